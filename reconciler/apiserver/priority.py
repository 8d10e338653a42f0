"""Pod priority on the API side: the Priority admission plugin and PriorityClass's rules.

A pod names a PriorityClass (`spec.priorityClassName`); admission resolves it once, at
creation, into `spec.priority` and `spec.preemptionPolicy`, which is what the scheduler
reads (it never looks the class up again, so editing or deleting a class later does not
re-rank running pods — as upstream). A pod naming no class gets the `globalDefault` class,
or priority 0. Users see these answers, so they are upstream's words:

- `pods "web" is forbidden: no PriorityClass with name high was found` (403);
- a pod that sets `spec.priority` itself, differing from its class: 403;
- a second `globalDefault` class: 403 naming the one that already is;
- a class's `value` above 1,000,000,000 or a `system-` name that is not one of the two
  built-in classes: 422; `value` and `preemptionPolicy` cannot change (422);
- the built-in `system-cluster-critical` and `system-node-critical` cannot be deleted.

Pure: the caller passes what is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.apiserver.errors import Cause, forbidden, invalid

__all__ = [
    "HIGHEST_USER_DEFINABLE_PRIORITY",
    "PREEMPT_LOWER_PRIORITY",
    "admit_pod",
    "check_class",
    "check_class_delete",
    "keep_pod_priority",
    "system_classes",
]

JSONDict = dict[str, Any]

GROUP = "scheduling.k8s.io"
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
PREEMPT_LOWER_PRIORITY = "PreemptLowerPriority"
_SYSTEM_PREFIX = "system-"
_SYSTEM = {
    "system-node-critical": (
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    "system-cluster-critical": (
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to "
        "another node if necessary.",
    ),
}


def system_classes() -> list[JSONDict]:
    """The built-in classes every cluster has (created at start when missing)."""
    return [
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "globalDefault": False,
            "description": description,
            "preemptionPolicy": PREEMPT_LOWER_PRIORITY,
        }
        for name, (value, description) in _SYSTEM.items()
    ]


def _default_class(classes: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The `globalDefault` class; with several (possible only by a race upstream), the one
    of lowest value, as upstream picks."""
    defaults = [c for c in classes if c.get("globalDefault") is True]
    return min(defaults, key=lambda c: int(c.get("value") or 0)) if defaults else None


def admit_pod(pod: JSONDict, classes: Mapping[str, Mapping[str, Any]], name: str) -> None:
    """Set a new pod's `spec.priority` and `spec.preemptionPolicy` from its class (`classes`:
    every stored PriorityClass by name), or raise the 403 upstream gives. `name`: the pod's
    name as requested (its `generateName` when it has no name yet, as upstream says it)."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    wanted = spec.get("priorityClassName")
    if wanted:
        found = classes.get(str(wanted))
        if found is None:
            raise forbidden("pods", name, "", f"no PriorityClass with name {wanted} was found")
        priority, policy = int(found.get("value") or 0), found.get("preemptionPolicy")
    else:
        default = _default_class(classes.values())
        if default is None:
            priority, policy = 0, PREEMPT_LOWER_PRIORITY
        else:
            spec["priorityClassName"] = (default.get("metadata") or {}).get("name")
            priority, policy = int(default.get("value") or 0), default.get("preemptionPolicy")
    given = spec.get("priority")
    if given is not None and given != priority:
        raise forbidden(
            "pods",
            name,
            "",
            f"the integer value of priority ({given}) must not be provided in pod spec; "
            f"priority admission controller computed {priority} from the given PriorityClass "
            "name",
        )
    spec["priority"] = priority
    policy = policy or PREEMPT_LOWER_PRIORITY
    given_policy = spec.get("preemptionPolicy")
    if given_policy is not None and given_policy != policy:
        raise forbidden(
            "pods",
            name,
            "",
            f"the string value of PreemptionPolicy ({given_policy}) must not be provided in pod "
            f"spec; priority admission controller computed {policy} from the given "
            "PriorityClass name",
        )
    spec["preemptionPolicy"] = policy


def keep_pod_priority(new: JSONDict, old: Mapping[str, Any]) -> None:
    """An update that leaves out what admission set at creation (a `kubectl replace` of the
    original manifest) keeps it, as upstream's plugin does on update."""
    spec, old_spec = new.get("spec"), old.get("spec") or {}
    if not isinstance(spec, dict):
        return
    for key in ("priority", "preemptionPolicy"):
        if spec.get(key) is None and old_spec.get(key) is not None:
            spec[key] = old_spec[key]


def check_class(
    new: Mapping[str, Any], old: Mapping[str, Any] | None, classes: Iterable[Mapping[str, Any]]
) -> None:
    """Raise for a PriorityClass create (`old` None) or update that upstream rejects.
    `classes`: the stored classes."""
    name = str((new.get("metadata") or {}).get("name") or "")
    causes: list[Cause] = []
    value = new.get("value")
    if name.startswith(_SYSTEM_PREFIX):
        known = _SYSTEM.get(name)
        if known is None or value != known[0] or new.get("globalDefault"):
            causes.append(
                Cause(
                    "metadata.name",
                    f"Forbidden: priority class names with '{_SYSTEM_PREFIX}' prefix are "
                    "reserved for system use only",
                    "FieldValueForbidden",
                )
            )
    elif isinstance(value, int) and value > HIGHEST_USER_DEFINABLE_PRIORITY:
        causes.append(
            Cause(
                "value",
                "Forbidden: maximum allowed value of a user defined priority is "
                f"{HIGHEST_USER_DEFINABLE_PRIORITY}",
                "FieldValueForbidden",
            )
        )
    if old is not None:
        if value != old.get("value"):
            causes.append(
                Cause("value", "Forbidden: may not be changed in an update.", "FieldValueForbidden")
            )
        if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
            causes.append(
                Cause("preemptionPolicy", "Invalid value: field is immutable", "FieldValueInvalid")
            )
    if causes:
        raise invalid("PriorityClass", name, GROUP, causes)
    if new.get("globalDefault") is True:
        for other in classes:
            other_name = (other.get("metadata") or {}).get("name")
            if other.get("globalDefault") is True and other_name != name:
                raise forbidden(
                    "priorityclasses",
                    name,
                    GROUP,
                    f"PriorityClass {other_name} is already marked as default. Only one "
                    "default can exist",
                )


def check_class_delete(name: str) -> None:
    if name in _SYSTEM:
        raise forbidden(
            "priorityclasses", name, GROUP, "this is a system priority class and cannot be deleted"
        )
