"""`pods/NAME/resize`: change a running pod's CPU and memory in place.

`kubectl patch pod web --subresource resize -p '{"spec":{"containers":[{"name":"app",
"resources":{"limits":{"cpu":"800m"}}}]}}'` is how Kubernetes 1.33+ users give a pod more
(or less) without recreating it; the node then changes the running containers' limits
(`node/resize.py`). As upstream's resize strategy and `ValidatePodResize`:

- only the containers' `resources` and `resizePolicy` are taken from the request; anything
  else in it is dropped, not refused;
- only CPU and memory may change, and a request or limit once set may not be removed;
- a request may not exceed its limit;
- the pod's QoS class may not change (`Pod QOS Class may not change as a result of
  resizing`, naming the class it has).

Pure: `resize_update(stored, requested)` gives the pod to store and the refusals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.apiserver.errors import Cause
from reconciler.pod_qos import qos_class
from reconciler.quantity import QuantityError, parse_quantity

__all__ = ["resize_update"]

JSONDict = dict[str, Any]

_MUTABLE = ("cpu", "memory")


def _causes_for(index: int, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    where = f"spec.containers[{index}].resources"
    causes: list[Cause] = []
    for kind in ("requests", "limits"):
        before = old.get(kind) or {}
        after = new.get(kind) or {}
        for resource in sorted(set(before) | set(after)):
            if resource not in _MUTABLE:
                if before.get(resource) != after.get(resource):
                    causes.append(
                        Cause(
                            "spec",
                            "Forbidden: only cpu and memory resources are mutable",
                            "FieldValueForbidden",
                        )
                    )
                continue
            if resource in before and resource not in after:
                causes.append(
                    Cause(
                        f"{where}.{kind}[{resource}]",
                        f"Forbidden: resource {kind} cannot be removed",
                        "FieldValueForbidden",
                    )
                )
    limits = new.get("limits") or {}
    for resource, request in (new.get("requests") or {}).items():
        if resource not in limits:
            continue
        try:
            too_much = parse_quantity(request) > parse_quantity(limits[resource])
        except QuantityError:
            continue  # the schema and quantity checks name it
        if too_much:
            causes.append(
                Cause(
                    f"{where}.requests",
                    f'Invalid value: "{request}": must be less than or equal to {resource} '
                    f"limit of {limits[resource]}",
                    "FieldValueInvalid",
                )
            )
    return causes


def resize_update(stored: JSONDict, requested: object) -> tuple[JSONDict, list[Cause]]:
    """(the pod with the requested containers' resources and resize policies, the causes
    that refuse the resize). `stored` is the caller's copy and is changed."""
    spec = stored.setdefault("spec", {})
    wanted_spec = (requested.get("spec") or {}) if isinstance(requested, dict) else {}
    wanted = {
        str(c.get("name")): c for c in wanted_spec.get("containers") or [] if isinstance(c, dict)
    }
    before = qos_class(spec)
    causes: list[Cause] = []
    for index, container in enumerate(spec.get("containers") or []):
        new = wanted.get(str(container.get("name")))
        if new is None:
            continue
        old_resources = json.loads(json.dumps(container.get("resources") or {}))
        resources = new.get("resources") or {}
        causes += _causes_for(index, old_resources, resources)
        container["resources"] = resources
        if "resizePolicy" in new:
            container["resizePolicy"] = new["resizePolicy"]
    shown = str((stored.get("status") or {}).get("qosClass") or before)
    if not causes and qos_class(spec) != before:
        causes.append(
            Cause(
                "spec",
                f'Invalid value: "{shown}": Pod QOS Class may not change as a result of resizing',
                "FieldValueInvalid",
            )
        )
    unique: list[Cause] = []
    for cause in causes:
        if cause not in unique:
            unique.append(cause)
    return stored, unique
