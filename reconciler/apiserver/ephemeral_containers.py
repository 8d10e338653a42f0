"""What a write through `pods/ephemeralcontainers` may change (upstream's
`ValidatePodEphemeralContainersUpdate` and `validateEphemeralContainers`).

Why a subresource of its own: `kubectl debug` adds a container to a running pod, whose spec
is otherwise fixed (`pod_update.py` refuses such a change through the pod itself), and the
permission to add a process to someone's pod is not the permission to edit the pod (RBAC
names `pods/ephemeralcontainers`). So a write here takes only `spec.ephemeralContainers`
from the body, everything else stays as stored, and only additions pass:

- an existing ephemeral container cannot be changed or removed (it may already have run,
  and the kubelet never restarts one);
- a new one needs a name unique among all the pod's containers, an image, and the
  `targetContainerName` it gives must be one of the pod's (init) containers;
- ports, probes, lifecycle hooks, resources, resize and restart policies and volume
  `subPath`s are refused: an ephemeral container is a visitor, not part of the workload.

The messages are upstream's, so kubectl prints what a cluster would. Pure.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.apiserver.defaults import pod_spec as default_pod_spec
from reconciler.apiserver.errors import Cause

__all__ = ["ephemeral_update", "ephemeral_update_errors"]

JSONDict = dict[str, Any]

_FIELD = "spec.ephemeralContainers"
_NOT_FOR_EPHEMERAL = "Forbidden: cannot be set for an Ephemeral Container"
# Upstream lists the fields an ephemeral container may have; these are the container
# fields it leaves out (a new field is refused until someone decides otherwise).
_REFUSED = (
    "ports",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SHOWN = 5  # changed paths named in a "may not be changed" message


def _go(value: Any) -> str:
    """A value as the apiserver quotes it in a message (`"app"`)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _containers(spec: Mapping[str, Any], key: str) -> list[JSONDict]:
    found = spec.get(key)
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def ephemeral_update(
    stored: JSONDict, requested: Mapping[str, Any]
) -> tuple[JSONDict, list[Cause]]:
    """(`stored`, a private copy of the stored pod, given the `spec.ephemeralContainers` of
    `requested`; why that may not be stored, [] when it may). Every other part of
    `requested` is ignored. The new containers are defaulted as containers are (upstream's
    `SetDefaults_EphemeralContainer` is the container's)."""
    spec = stored.setdefault("spec", {})
    old_spec = {"ephemeralContainers": spec.get("ephemeralContainers") or []}  # replaced below
    wanted = (requested.get("spec") or {}).get("ephemeralContainers")
    if wanted:
        ephemeral = copy.deepcopy(wanted)
        if isinstance(ephemeral, list):
            # Through the containers' own defaulting (`defaults.py`), in a scratch spec.
            default_pod_spec({"containers": ephemeral})
        spec["ephemeralContainers"] = ephemeral
    else:
        spec.pop("ephemeralContainers", None)
    return stored, ephemeral_update_errors(old_spec, spec)


def ephemeral_update_errors(
    old_spec: Mapping[str, Any], new_spec: Mapping[str, Any]
) -> list[Cause]:
    """Why `new_spec` (the stored spec with the requested ephemeral containers, defaulted)
    may not replace `old_spec`; [] when it may."""
    causes = list(_container_errors(new_spec))
    new_by_name = {str(c.get("name")): c for c in _containers(new_spec, "ephemeralContainers")}
    for old in _containers(old_spec, "ephemeralContainers"):
        name = str(old.get("name"))
        new = new_by_name.get(name)
        if new is None:
            message = f"Forbidden: existing ephemeral containers {_go(name)} may not be removed\n"
            causes.append(Cause(_FIELD, message, "FieldValueForbidden"))
        elif new != old:
            changed = list(_changed(old, new, ""))
            shown = ", ".join(changed[:_SHOWN]) + (", ..." if len(changed) > _SHOWN else "")
            message = (
                f"Forbidden: existing ephemeral containers {_go(name)} may not be changed\n"
                f"changed: {shown}"
            )
            causes.append(Cause(_FIELD, message, "FieldValueForbidden"))
    return causes


def _container_errors(spec: Mapping[str, Any]) -> Iterator[Cause]:
    """Upstream's `validateEphemeralContainers` for every ephemeral container of `spec`."""
    others = {
        str(c.get("name"))
        for key in ("containers", "initContainers")
        for c in _containers(spec, key)
    }
    seen = set(others)
    volumes = {str(v.get("name")) for v in _containers(spec, "volumes")}
    for index, container in enumerate(_containers(spec, "ephemeralContainers")):
        at = f"{_FIELD}[{index}]"
        name = container.get("name")
        if not name:
            yield Cause(f"{at}.name", "Required value", "FieldValueRequired")
        elif not isinstance(name, str) or len(name) > 63 or not _DNS1123_LABEL.match(name):
            yield Cause(
                f"{at}.name",
                f"Invalid value: {_go(name)}: a lowercase RFC 1123 label must consist of lower "
                "case alphanumeric characters or '-', and must start and end with an "
                "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            )
        elif name in seen:
            yield Cause(f"{at}.name", f"Duplicate value: {_go(name)}", "FieldValueDuplicate")
        else:
            seen.add(name)
        if not container.get("image"):
            yield Cause(f"{at}.image", "Required value", "FieldValueRequired")
        target = container.get("targetContainerName")
        if target and target not in others:
            yield Cause(
                f"{at}.targetContainerName", f"Not found: {_go(target)}", "FieldValueNotFound"
            )
        for key in _REFUSED:
            if container.get(key):  # an empty value is the zero value upstream compares with
                yield Cause(f"{at}.{key}", _NOT_FOR_EPHEMERAL, "FieldValueForbidden")
        yield from _mount_errors(container, volumes, at)


def _mount_errors(container: Mapping[str, Any], volumes: set[str], at: str) -> Iterator[Cause]:
    for index, mount in enumerate(_containers(container, "volumeMounts")):
        where = f"{at}.volumeMounts[{index}]"
        name = mount.get("name")
        if name not in volumes:
            yield Cause(f"{where}.name", f"Not found: {_go(name)}", "FieldValueNotFound")
        for key in ("subPath", "subPathExpr"):
            if mount.get(key):
                yield Cause(f"{where}.{key}", _NOT_FOR_EPHEMERAL, "FieldValueForbidden")


def _changed(old: Any, new: Any, path: str) -> Iterator[str]:
    """The fields where `new` differs from `old`, depth first (upstream prints a Go diff)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                yield from _changed(old.get(key), new.get(key), f"{path}.{key}" if path else key)
    else:
        yield path or "(the container)"
