"""Which changes a pod's spec accepts after creation (upstream's `ValidatePodUpdate`).

A pod is a running thing, not a template: the kubelet cannot apply most spec changes, so
the API refuses them instead of storing a spec that does not describe what runs. What may
change, as upstream: the containers' and init containers' `image` (the node restarts the
container with it), `activeDeadlineSeconds` (set, or lowered), `tolerations` (only added
to), `terminationGracePeriodSeconds` from a negative value to 1, `schedulingGates` (only
removed), and `nodeName` while unset (binding). Anything else is upstream's 422
(`spec: Forbidden: pod updates may not change fields other than ...`), here followed by
the fields that changed, so `kubectl edit` says what to put back.

Pure.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.apiserver.errors import Cause

__all__ = ["pod_update_errors"]

JSONDict = dict[str, Any]

_FORBIDDEN = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)"
)
_SHOWN = 5  # changed paths named in the message


def _changed(old: Any, new: Any, path: str) -> Iterator[str]:
    """The paths where `new` differs from `old`, depth first."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                yield from _changed(old.get(key), new.get(key), f"{path}.{key}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                yield from _changed(a, b, f"{path}[{i}]")
    else:
        yield path


def _deadline_errors(old: Any, new: Any) -> list[Cause]:
    if new == old:
        return []
    field = "spec.activeDeadlineSeconds"
    if new is None:
        return [Cause(field, "Invalid value: must not update from a positive integer to nil value")]
    if isinstance(old, int) and isinstance(new, int) and new > old:
        return [Cause(field, "Invalid value: must be less than or equal to previous value")]
    return []


def pod_update_errors(old_spec: Mapping[str, Any], new_spec: Mapping[str, Any]) -> list[Cause]:
    """Why `new_spec` may not replace `old_spec` (both defaulted); [] when it may."""
    if old_spec == new_spec:
        return []
    causes = _deadline_errors(
        old_spec.get("activeDeadlineSeconds"), new_spec.get("activeDeadlineSeconds")
    )
    # Put back into a copy of the new spec what may change; what still differs may not.
    mended: JSONDict = copy.deepcopy(dict(new_spec))
    for key in ("containers", "initContainers"):
        old_list, new_list = old_spec.get(key), mended.get(key)
        if isinstance(old_list, list) and isinstance(new_list, list):
            for old_c, new_c in zip(old_list, new_list, strict=False):
                if isinstance(old_c, Mapping) and isinstance(new_c, dict):
                    new_c["image"] = old_c.get("image")
                    if old_c.get("image") is None:
                        new_c.pop("image")
    _restore(mended, old_spec, "activeDeadlineSeconds")
    old_tolerations = old_spec.get("tolerations") or []
    if all(t in (mended.get("tolerations") or []) for t in old_tolerations):
        _restore(mended, old_spec, "tolerations")
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if (
        isinstance(old_grace, int)
        and old_grace < 0
        and mended.get("terminationGracePeriodSeconds") == 1
    ):
        _restore(mended, old_spec, "terminationGracePeriodSeconds")
    old_gates = old_spec.get("schedulingGates") or []
    if all(g in old_gates for g in mended.get("schedulingGates") or []):
        _restore(mended, old_spec, "schedulingGates")
    if not old_spec.get("nodeName"):
        _restore(mended, old_spec, "nodeName")
    if mended != old_spec:
        paths = list(_changed(old_spec, mended, "spec"))
        shown = ", ".join(paths[:_SHOWN]) + (", ..." if len(paths) > _SHOWN else "")
        causes.append(Cause("spec", f"{_FORBIDDEN}; changed: {shown}", "FieldValueForbidden"))
    return causes


def _restore(spec: JSONDict, old: Mapping[str, Any], key: str) -> None:
    if key in old:
        spec[key] = copy.deepcopy(old[key])
    else:
        spec.pop(key, None)
