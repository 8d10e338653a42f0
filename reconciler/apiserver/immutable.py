"""Fields an update may not change, as the apiserver's validation says it. Pure.

Users meet these every time a workload is reshaped in git: a Deployment's new selector, a
Job's new pod template, a StatefulSet's new `serviceName` are refused with `field is
immutable` (and Argo CD's `Force=true` exists to delete and re-create such objects). Without
the refusal the change would be stored and the controllers would act on a selector or a
template their pods no longer match. The rules kept here:

- `spec.selector` of Deployments, ReplicaSets, DaemonSets and Jobs;
- a Job's `spec.template` (upstream lets a suspended Job that never started change its
  scheduling directives only; Recon keeps the whole template), `completionMode`,
  `podFailurePolicy`, `backoffLimitPerIndex`, `successPolicy`, `managedBy` (the
  controller a Job was handed to keeps it), and `completions` — except that an Indexed
  Job's may change together with `parallelism`, to the same number (elastic Indexed Jobs);
- a StatefulSet's spec beyond `replicas`, `ordinals`, `template`, `updateStrategy`,
  `persistentVolumeClaimRetentionPolicy` and `minReadySeconds` (its selector included:
  upstream has no rule of its own for it);
- the data of a ConfigMap or Secret marked `immutable: true`, and that mark itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.apiserver.errors import Cause

__all__ = ["immutable_errors"]

JSONDict = dict[str, Any]

_SELECTOR_KINDS = {
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
}
_STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
_IMMUTABLE_SET = "Forbidden: field is immutable when `immutable` is set"


def _value(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _changed(field: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Cause | None:
    if old.get(field) == new.get(field):
        return None
    return Cause(
        f"spec.{field}",
        f"Invalid value: {_value(new.get(field))}: field is immutable",
        "FieldValueInvalid",
    )


def _completions(old: Mapping[str, Any], new: Mapping[str, Any]) -> Cause | None:
    """A Job's completions: fixed, but for an Indexed Job scaled with its parallelism."""
    if old.get("completions") == new.get("completions"):
        return None
    if new.get("completionMode") != "Indexed":
        return _changed("completions", old, new)
    wanted = new.get("completions")
    if wanted is None or wanted == new.get("parallelism"):
        return None
    return Cause(
        "spec.completions",
        f"Invalid value: {_value(wanted)}: can only be modified in tandem with spec.parallelism",
        "FieldValueInvalid",
    )


def immutable_errors(group: str, kind: str, old: JSONDict, new: JSONDict) -> list[Cause]:
    """Why an update of `old` to `new` (both defaulted) is refused; empty when it is not."""
    causes: list[Cause | None] = []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if (group, kind) == ("batch", "Job"):
        causes.append(_completions(old_spec, new_spec))
    if (group, kind) in _SELECTOR_KINDS:
        causes.append(_changed("selector", old_spec, new_spec))
    if (group, kind) == ("batch", "Job"):
        for field in (
            "template",
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
            "managedBy",
            "successPolicy",
        ):
            causes.append(_changed(field, old_spec, new_spec))
    if (group, kind) == ("apps", "StatefulSet"):
        rest_old = {k: v for k, v in old_spec.items() if k not in _STATEFULSET_MUTABLE}
        rest_new = {k: v for k, v in new_spec.items() if k not in _STATEFULSET_MUTABLE}
        if rest_old != rest_new:
            allowed = ", ".join(f"'{f}'" for f in _STATEFULSET_MUTABLE[:-1])
            causes.append(
                Cause(
                    "spec",
                    f"Forbidden: updates to statefulset spec for fields other than {allowed} "
                    f"and '{_STATEFULSET_MUTABLE[-1]}' are forbidden",
                    "FieldValueForbidden",
                )
            )
    if (group, kind) in (("", "ConfigMap"), ("", "Secret")) and old.get("immutable") is True:
        for field in ("data", "binaryData", "stringData"):
            if (old.get(field) or {}) != (new.get(field) or {}) and field != "stringData":
                causes.append(Cause(field, _IMMUTABLE_SET, "FieldValueForbidden"))
        if new.get("immutable") is not True:
            causes.append(Cause("immutable", _IMMUTABLE_SET, "FieldValueForbidden"))
    return [c for c in causes if c is not None]
