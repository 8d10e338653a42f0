"""ResourceQuotas: what objects in a namespace use of a quota's `hard` limits.

Shared by the API server's quota admission (a create that would go over a quota is refused
with upstream's 403: `exceeded quota: compute, requested: requests.cpu=1, used:
requests.cpu=2, limited: requests.cpu=2`) and the quota controller, which keeps
`status.used` for `kubectl describe quota`. Both count with `usage`, so what admission
refuses and what the status says never disagree.

What is counted, as upstream's evaluators: a pod not yet finished counts for `pods` /
`count/pods` and its requests and limits (`cpu` is `requests.cpu`, `memory` is
`requests.memory`; the sum of the app containers or the largest init container, plus
overhead); a Service for `services`, `services.nodeports` (its node ports) and
`services.loadbalancers`; a claim for `persistentvolumeclaims` and `requests.storage`;
ConfigMaps, Secrets, ReplicationControllers and ResourceQuotas by their plain names; any
kind as `count/<resource>.<group>`. Scopes (`Terminating`, `NotTerminating`, `BestEffort`,
`NotBestEffort`, and `PriorityClass` in a `scopeSelector`) restrict a quota to the pods
they match, and to pod resources.

Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from reconciler.quantity import QuantityError, format_quantity, parse_quantity

__all__ = [
    "COMPUTE",
    "Usage",
    "admission_error",
    "counted_resources",
    "format_usage",
    "matches",
    "total_usage",
    "usage",
    "used_status",
    "uses_more",
]

JSONDict = dict[str, Any]
Usage = dict[str, Decimal]

_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}
COMPUTE = (
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
    "requests.ephemeral-storage",
    "limits.ephemeral-storage",
)
_POD_RESOURCES = frozenset({"pods", "count/pods", "cpu", "memory", *COMPUTE, "ephemeral-storage"})
_PLAIN_COUNTS = {
    "services": "services",
    "configmaps": "configmaps",
    "secrets": "secrets",
    "persistentvolumeclaims": "persistentvolumeclaims",
    "replicationcontrollers": "replicationcontrollers",
    "resourcequotas": "resourcequotas",
}


def _q(value: Any) -> Decimal:
    try:
        return parse_quantity(value)
    except (QuantityError, TypeError):
        return Decimal(0)


def _terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _pod_resources(spec: Mapping[str, Any], kind: str) -> Usage:
    """`requests` or `limits` of a pod: the app containers' sum or the largest init
    container, whichever is more, plus overhead (what the scheduler counts too)."""

    def of(container: Mapping[str, Any]) -> Usage:
        values = (container.get("resources") or {}).get(kind) or {}
        return {k: _q(v) for k, v in values.items()}

    total: Usage = {}
    for container in spec.get("containers") or []:
        for k, v in of(container).items():
            total[k] = total.get(k, Decimal(0)) + v
    for container in spec.get("initContainers") or []:
        for k, v in of(container).items():
            total[k] = max(total.get(k, Decimal(0)), v)
    if kind == "requests":
        for k, v in (spec.get("overhead") or {}).items():
            total[k] = total.get(k, Decimal(0)) + _q(v)
    return total


def usage(resource: str, group: str, obj: Mapping[str, Any]) -> Usage:
    """What one object of `resource` (plural) in `group` counts against quotas."""
    count = f"count/{resource}" + (f".{group}" if group else "")
    out: Usage = {count: Decimal(1)}
    if not group and resource in _PLAIN_COUNTS:
        out[_PLAIN_COUNTS[resource]] = Decimal(1)
    spec = obj.get("spec") or {}
    if not group and resource == "pods":
        if _terminal(obj):
            return {}
        out["pods"] = Decimal(1)
        for kind in ("requests", "limits"):
            for name, value in _pod_resources(spec, kind).items():
                if name in ("cpu", "memory", "ephemeral-storage"):
                    out[f"{kind}.{name}"] = value
    elif not group and resource == "services":
        service_type = spec.get("type")
        ports = [p for p in spec.get("ports") or [] if isinstance(p, Mapping)]
        if service_type in ("NodePort", "LoadBalancer"):
            out["services.nodeports"] = Decimal(len(ports))
        if service_type == "LoadBalancer":
            out["services.loadbalancers"] = Decimal(1)
    elif not group and resource == "persistentvolumeclaims":
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        out["requests.storage"] = _q(storage)
        storage_class = spec.get("storageClassName")
        if storage_class:
            prefix = f"{storage_class}.storageclass.storage.k8s.io"
            out[f"{prefix}/requests.storage"] = _q(storage)
            out[f"{prefix}/persistentvolumeclaims"] = Decimal(1)
    return out


def _scope_matches(scope: str, operator: str, values: list[str], pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None
    if scope == "NotTerminating":
        return spec.get("activeDeadlineSeconds") is None
    best_effort = not any(
        (c.get("resources") or {}).get(kind)
        for key in ("containers", "initContainers")
        for c in spec.get(key) or []
        for kind in ("requests", "limits")
    )
    if scope == "BestEffort":
        return best_effort
    if scope == "NotBestEffort":
        return not best_effort
    if scope == "PriorityClass":
        name = spec.get("priorityClassName")
        if operator == "Exists":
            return bool(name)
        if operator == "DoesNotExist":
            return not name
        if operator == "In":
            return name in values
        if operator == "NotIn":
            return name not in values
    return False


def matches(quota: Mapping[str, Any], resource: str, group: str, obj: Mapping[str, Any]) -> bool:
    """Whether `quota` counts `obj` at all: an unscoped quota counts everything; a scoped
    one only the pods its scopes match."""
    spec = quota.get("spec") or {}
    scopes: list[tuple[str, str, list[str]]] = [
        (str(s), "Exists", []) for s in spec.get("scopes") or []
    ]
    for expression in (spec.get("scopeSelector") or {}).get("matchExpressions") or []:
        scopes.append(
            (
                str(expression.get("scopeName")),
                str(expression.get("operator") or "Exists"),
                list(expression.get("values") or []),
            )
        )
    if not scopes:
        return True
    if group or resource != "pods":
        return False
    return all(_scope_matches(s, op, values, obj) for s, op, values in scopes)


def counted_resources(quota: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (resource, group) whose objects a quota's `hard` resources count."""
    out: set[tuple[str, str]] = set()
    for key in _hard(quota):
        if key.startswith("count/"):
            resource, _, group = key[len("count/") :].partition(".")
            out.add((resource, group))
        elif key in _POD_RESOURCES:
            out.add(("pods", ""))
        elif key.startswith("services"):
            out.add(("services", ""))
        elif key in _PLAIN_COUNTS:
            out.add((key, ""))
        elif key.endswith(("requests.storage", "persistentvolumeclaims")):
            out.add(("persistentvolumeclaims", ""))
    return out


def _hard(quota: Mapping[str, Any]) -> dict[str, Any]:
    hard = (quota.get("spec") or {}).get("hard") or {}
    return {_ALIASES.get(k, k): v for k, v in hard.items()}


def total_usage(
    quota: Mapping[str, Any], objects: Iterable[tuple[str, str, Mapping[str, Any]]]
) -> Usage:
    """What `objects` — (resource, group, object) — use of each of the quota's resources."""
    hard = _hard(quota)
    scoped = bool((quota.get("spec") or {}).get("scopes")) or bool(
        (quota.get("spec") or {}).get("scopeSelector")
    )
    used: Usage = {k: Decimal(0) for k in hard if not scoped or k in _POD_RESOURCES}
    for resource, group, obj in objects:
        if not matches(quota, resource, group, obj):
            continue
        for k, v in usage(resource, group, obj).items():
            if k in used:
                used[k] += v
    return used


def used_status(quota: Mapping[str, Any], used: Usage) -> dict[str, str]:
    """`status.used` of `quota`: what `used` (from `total_usage`) says of each resource of
    its `hard`, under the name the quota gives it (`cpu` is `requests.cpu`)."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    return {k: format_usage(k, used.get(_ALIASES.get(k, k), Decimal(0))) for k in hard}


def format_usage(name: str, value: Decimal) -> str:
    binary = "memory" in name or "storage" in name
    return format_quantity(value, binary)


def _must_specify(quota_name: str, hard: Mapping[str, Any], pod: Mapping[str, Any]) -> str | None:
    spec = pod.get("spec") or {}
    containers = [
        c
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
        if isinstance(c, Mapping)
    ]
    missing = []
    for resource in sorted(k for k in hard if k in COMPUTE):
        kind, _, name = resource.partition(".")
        lacking = [
            str(c.get("name"))
            for c in containers
            if name not in ((c.get("resources") or {}).get(kind) or {})
        ]
        if lacking:
            missing.append(f"{resource} for: {','.join(lacking)}")
    if not missing:
        return None
    return f"failed quota: {quota_name}: must specify {'; '.join(missing)}"


def uses_more(
    quota: Mapping[str, Any],
    resource: str,
    group: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
) -> bool:
    """Does replacing `old` by `new` use more of one of the quota's resources? (Only such
    updates are checked, as upstream: a quota made after an object does not refuse it
    changes that use no more.)"""
    if not matches(quota, resource, group, new):
        return False
    before = usage(resource, group, old) if matches(quota, resource, group, old) else {}
    after = usage(resource, group, new)
    return any(after.get(k, Decimal(0)) > before.get(k, Decimal(0)) for k in _hard(quota))


def admission_error(
    quota: Mapping[str, Any],
    resource: str,
    group: str,
    obj: Mapping[str, Any],
    used: Usage,
    *,
    check_specified: bool = True,
) -> str | None:
    """Why creating `obj` would break `quota` (given what the namespace already `used`,
    from `total_usage`), in upstream's words; None when it may be created.
    `check_specified`: a new pod must state what a compute quota counts."""
    if not matches(quota, resource, group, obj):
        return None
    hard = _hard(quota)
    name = str((quota.get("metadata") or {}).get("name") or "")
    wanted = usage(resource, group, obj)
    if check_specified and not group and resource == "pods" and wanted:
        said = _must_specify(name, hard, obj)
        if said is not None:
            return said
    over = sorted(
        k for k, v in wanted.items() if k in hard and used.get(k, Decimal(0)) + v > _q(hard[k])
    )
    if not over:
        return None

    def listed(values: Mapping[str, str]) -> str:
        return ",".join(f"{k}={values[k]}" for k in over)

    requested = {k: format_usage(k, wanted[k]) for k in over}
    current = {k: format_usage(k, used.get(k, Decimal(0))) for k in over}
    limited = {k: str(hard[k]) for k in over}
    return (
        f"exceeded quota: {name}, requested: {listed(requested)}, used: {listed(current)}, "
        f"limited: {listed(limited)}"
    )
