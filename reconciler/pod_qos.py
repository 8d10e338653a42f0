"""A pod's Quality of Service class, as upstream's `ComputePodQOS` derives it from requests
and limits: shown by the node in `status.qosClass` and held fixed by the API when a pod is
resized in place (a resize may not move a pod between classes).

- Guaranteed: every container (init containers included) limits both CPU and memory, and
  each request it gives for them equals the limit;
- Burstable: any request or limit otherwise;
- BestEffort: none at all.

Quantities compare by value (`500m` equals `0.5`). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.quantity import QuantityError, parse_quantity

__all__ = ["qos_class"]

_COMPUTE = ("cpu", "memory")


def _same(a: Any, b: Any) -> bool:
    try:
        return parse_quantity(a) == parse_quantity(b)
    except QuantityError:
        return str(a) == str(b)


def qos_class(spec: Mapping[str, Any]) -> str:
    containers = [
        c
        for group in ("initContainers", "containers")
        for c in spec.get(group) or []
        if isinstance(c, dict)
    ]
    any_set = False
    guaranteed = bool(containers)
    for container in containers:
        resources = container.get("resources") or {}
        limits = {k: v for k, v in (resources.get("limits") or {}).items() if k in _COMPUTE}
        requests = {k: v for k, v in (resources.get("requests") or {}).items() if k in _COMPUTE}
        if limits or requests:
            any_set = True
        if set(limits) != set(_COMPUTE):
            guaranteed = False
        for key, value in requests.items():
            if key in limits and not _same(value, limits[key]):
                guaranteed = False
    if guaranteed and any_set:
        return "Guaranteed"
    return "Burstable" if any_set else "BestEffort"
