"""Pod Security Admission: what the API does with a namespace's Pod Security level.

Every cluster since Kubernetes 1.25 runs this plugin, and users label namespaces with
`pod-security.kubernetes.io/enforce: restricted` expecting it (`pod_security.py` holds the
checks). As upstream's `admission.go`:

- a Pod that violates the namespace's **enforce** level is refused (403, `pods "web" is
  forbidden: violates PodSecurity "restricted:latest": ...`); one that violates its **warn**
  level (when that differs from enforce) is stored with a `would violate PodSecurity`
  warning; **audit** has no audit log to go to here;
- an update of a pod is checked only when it could change the verdict (a container image,
  containers added or removed: upstream's `isSignificantPodUpdate`), and so is a debug
  container added through `pods/ephemeralcontainers`;
- a workload's pod template (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
  ReplicationController, PodTemplate) is never refused, only warned about, for the enforce
  and the warn level: the pods it makes are refused later, by the pod check;
- a Namespace with an invalid level or version label is refused (422); a change of its
  enforce level warns about the pods already there that violate the new level, grouped by
  their reasons (`kubectl label --dry-run=server ns x pod-security...=restricted` is how
  users preview a level).

Pure: the caller gives the namespace's labels and the objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.apiserver.pod_security import (
    LEVELS,
    check_pod,
    label_errors,
    namespace_policy,
    violation_text,
)

__all__ = [
    "namespace_label_errors",
    "namespace_warnings",
    "pod_update_matters",
    "pod_verdict",
    "template_of",
    "template_warnings",
]

JSONDict = dict[str, Any]

_TEMPLATE_KINDS = {
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("", "ReplicationController"),
}


def _spec_and_meta(pod: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    return pod.get("metadata") or {}, pod.get("spec") or {}


def pod_verdict(labels: Mapping[str, str], pod: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(why the pod is refused, or None; the warnings to send) under the namespace's labels."""
    policy, _ = namespace_policy(labels)
    meta, spec = _spec_and_meta(pod)
    level, version = policy.enforce
    refused = violation_text(level, version, check_pod(level, meta, spec)) or None
    warnings: list[str] = []
    if policy.warn != policy.enforce:
        level, version = policy.warn
        text = violation_text(level, version, check_pod(level, meta, spec), would=True)
        if text:
            warnings.append(text)
    return refused, warnings


def _containers(spec: Mapping[str, Any], group: str) -> list[Mapping[str, Any]]:
    return [c for c in spec.get(group) or [] if isinstance(c, Mapping)]


def pod_update_matters(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a pod update is checked again: upstream's isSignificantPodUpdate (containers
    added or removed, an image changed, the seccomp annotations changed)."""
    old_meta, old_spec = _spec_and_meta(old)
    new_meta, new_spec = _spec_and_meta(new)

    def seccomp(meta: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if str(k).startswith(("seccomp.security.alpha.kubernetes.io/", "container.seccomp"))
        }

    if seccomp(old_meta) != seccomp(new_meta):
        return True
    for group in ("initContainers", "containers", "ephemeralContainers"):
        before, after = _containers(old_spec, group), _containers(new_spec, group)
        if len(before) != len(after):
            return True
        if any(a.get("image") != b.get("image") for a, b in zip(before, after, strict=True)):
            return True
    return False


def template_of(group: str, kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod template of a workload (None for anything else)."""
    spec = obj.get("spec") or {}
    if (group, kind) in _TEMPLATE_KINDS:
        template = spec.get("template")
    elif (group, kind) == ("batch", "CronJob"):
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    elif (group, kind) == ("", "PodTemplate"):
        template = obj.get("template")
    else:
        return None
    return template if isinstance(template, Mapping) else None


def template_warnings(labels: Mapping[str, str], template: Mapping[str, Any]) -> list[str]:
    """Warnings for a workload whose pods the namespace would refuse or warn about: the
    enforce level first, then the warn level when it differs (upstream's pod controllers)."""
    policy, _ = namespace_policy(labels)
    meta, spec = _spec_and_meta(template)
    found: list[str] = []
    for level, version in dict.fromkeys((policy.enforce, policy.warn)):
        text = violation_text(level, version, check_pod(level, meta, spec), would=True)
        if text and text not in found:
            found.append(text)
    return found


def namespace_label_errors(
    labels: Mapping[str, str], old_labels: Mapping[str, str] | None
) -> list[tuple[str, str]]:
    """(field, message) for each invalid pod-security label; on an update only when the
    errors differ from the stored labels' (upstream lets invalid labels already there stay)."""
    errors = label_errors(labels)
    if errors and old_labels is not None and label_errors(old_labels) == errors:
        return []
    return [(f"metadata.labels[{key}]", message) for key, message in errors]


def namespace_warnings(
    namespace: str,
    old_labels: Mapping[str, str] | None,
    labels: Mapping[str, str],
    pods: Iterable[Mapping[str, Any]],
) -> list[str]:
    """When the enforce level changes: the namespace's pods that violate the new one, pods
    with the same reasons on one line (`web-1 (and 2 other pods): host namespaces`), as
    upstream warns on `kubectl label ns`."""
    policy, _ = namespace_policy(labels)
    if old_labels is not None and namespace_policy(old_labels)[0].enforce == policy.enforce:
        return []
    level, version = policy.enforce
    if level == LEVELS[0]:
        return []
    groups: dict[tuple[str, ...], list[str]] = {}
    for pod in pods:
        meta, spec = _spec_and_meta(pod)
        reasons = tuple(dict.fromkeys(v.reason for v in check_pod(level, meta, spec)))
        if reasons:
            groups.setdefault(reasons, []).append(str(meta.get("name") or ""))
    if not groups:
        return []
    warnings = [
        f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
        f'"{level}:{version}"'
    ]
    for reasons, names in sorted(groups.items(), key=lambda item: sorted(item[1])[0]):
        first, others = sorted(names)[0], len(names) - 1
        more = f" (and {others} other pod{'s' if others != 1 else ''})" if others else ""
        warnings.append(f"{first}{more}: {', '.join(reasons)}")
    return warnings
