"""LimitRanges: a namespace's default and bounds for container, pod and claim resources.

The LimitRanger admission plugin's behaviour, which users meet when a namespace has a
LimitRange: a new pod's containers get the range's `default` limits and `defaultRequest`
requests for resources they do not set (and the annotation `kubernetes.io/limit-ranger`
says which), then every container, the pod as a whole and each PersistentVolumeClaim is
checked against `min`, `max` and `maxLimitRequestRatio`, with upstream's messages
(`minimum cpu usage per Container is 100m, but request is 50m`). The caller refuses the
object with all of them (403).

Pure. Worked example: a range `{type: Container, default: {cpu: 500m}, max: {cpu: 1}}` and a
container asking for nothing: it gets `limits.cpu: 500m` and, by the range's own defaulting
(`default_item`), `requests.cpu: 500m`; a container with `limits.cpu: 2` is refused with
`maximum cpu usage per Container is 1, but limit is 2`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from reconciler.quantity import QuantityError, format_quantity, parse_quantity

__all__ = ["ANNOTATION", "admit_claim", "admit_pod", "default_item"]

JSONDict = dict[str, Any]

ANNOTATION = "kubernetes.io/limit-ranger"


def default_item(item: JSONDict) -> None:
    """A LimitRange item's own defaults (upstream's SetDefaults_LimitRangeItem): for a
    Container item, a missing default limit is the max, a missing default request the
    default limit, else the min."""
    if item.get("type") != "Container":
        return
    default = item.setdefault("default", {})
    request = item.setdefault("defaultRequest", {})
    for key, value in (item.get("max") or {}).items():
        default.setdefault(key, value)
    for key, value in default.items():
        request.setdefault(key, value)
    for key, value in (item.get("min") or {}).items():
        request.setdefault(key, value)
    if not default:
        del item["default"]
    if not request:
        del item["defaultRequest"]


def _items(ranges: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [
        item
        for r in ranges
        for item in ((r.get("spec") or {}).get("limits") or [])
        if isinstance(item, Mapping) and item.get("type") == kind
    ]


def _value(quantity: Any) -> Decimal | None:
    try:
        return parse_quantity(quantity)
    except (QuantityError, TypeError):
        return None


def _check(
    kind: str,
    item: Mapping[str, Any],
    requests: Mapping[str, Any],
    limits: Mapping[str, Any],
    out: list[str],
) -> None:
    for resource, bound in (item.get("min") or {}).items():
        enforced, request, limit = _value(bound), requests.get(resource), limits.get(resource)
        if request is None:
            out.append(f"minimum {resource} usage per {kind} is {bound}.  No request is specified")
        elif enforced is not None and (_value(request) or 0) < enforced:
            out.append(f"minimum {resource} usage per {kind} is {bound}, but request is {request}")
        elif enforced is not None and limit is not None and (_value(limit) or 0) < enforced:
            out.append(f"minimum {resource} usage per {kind} is {bound}, but limit is {limit}")
    for resource, bound in (item.get("max") or {}).items():
        enforced, request, limit = _value(bound), requests.get(resource), limits.get(resource)
        if limit is None:
            out.append(f"maximum {resource} usage per {kind} is {bound}.  No limit is specified")
        elif enforced is not None and (_value(limit) or 0) > enforced:
            out.append(f"maximum {resource} usage per {kind} is {bound}, but limit is {limit}")
        elif enforced is not None and request is not None and (_value(request) or 0) > enforced:
            out.append(f"maximum {resource} usage per {kind} is {bound}, but request is {request}")
    for resource, bound in (item.get("maxLimitRequestRatio") or {}).items():
        enforced = _value(bound)
        limit, request = _value(limits.get(resource)), _value(requests.get(resource))
        if enforced is None or limit is None:
            continue
        if not request:
            out.append(
                f"{resource} max limit to request ratio per {kind} is {bound}, but no request "
                "is specified or request is 0"
            )
        elif limit / request > enforced:
            out.append(
                f"{resource} max limit to request ratio per {kind} is {bound}, but provided "
                f"ratio is {float(limit / request):f}"
            )


def _sum(values: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    total: dict[str, Decimal] = {}
    for resources in values:
        for key, quantity in resources.items():
            value = _value(quantity)
            if value is not None:
                total[key] = total.get(key, Decimal(0)) + value
    return {k: format_quantity(v, binary="memory" in k or "storage" in k) for k, v in total.items()}


def admit_pod(pod: JSONDict, ranges: Iterable[Mapping[str, Any]]) -> list[str]:
    """Default `pod`'s container resources from the Container items (in place), then the
    errors of every Container and Pod item ([] when it may be created)."""
    ranges = list(ranges)
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return []
    container_items = _items(ranges, "Container")
    said: list[str] = []
    for key, what in (("initContainers", "init container"), ("containers", "container")):
        for container in spec.get(key) or []:
            if isinstance(container, dict) and container_items:
                said += _default_container(container, container_items, what)
    if said:
        annotations = pod.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(said)
    errors: list[str] = []
    containers = [c for c in spec.get("containers") or [] if isinstance(c, Mapping)]
    inits = [c for c in spec.get("initContainers") or [] if isinstance(c, Mapping)]
    for item in container_items:
        for container in [*inits, *containers]:
            resources = container.get("resources") or {}
            _check(
                "Container",
                item,
                resources.get("requests") or {},
                resources.get("limits") or {},
                errors,
            )
    for item in _items(ranges, "Pod"):
        requests = _sum((c.get("resources") or {}).get("requests") or {} for c in containers)
        limits = _sum((c.get("resources") or {}).get("limits") or {} for c in containers)
        _check("Pod", item, requests, limits, errors)
    return errors


def _default_container(container: JSONDict, items: list[Mapping[str, Any]], what: str) -> list[str]:
    resources = container.setdefault("resources", {})
    set_requests: list[str] = []
    set_limits: list[str] = []
    for item in items:
        for key, value in (item.get("default") or {}).items():
            limits = resources.setdefault("limits", {})
            if key not in limits:
                limits[key] = value
                set_limits.append(key)
        for key, value in (item.get("defaultRequest") or {}).items():
            requests = resources.setdefault("requests", {})
            if key not in requests:
                requests[key] = value
                set_requests.append(key)
    name = container.get("name")
    said = []
    if set_requests:
        said.append(f"{', '.join(set_requests)} request for {what} {name}")
    if set_limits:
        said.append(f"{', '.join(set_limits)} limit for {what} {name}")
    return said


def admit_claim(claim: Mapping[str, Any], ranges: Iterable[Mapping[str, Any]]) -> list[str]:
    """The errors of the PersistentVolumeClaim items for a new claim."""
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    kind = "PersistentVolumeClaim"
    errors: list[str] = []
    for item in _items(ranges, kind):
        _check(kind, {"min": item.get("min") or {}}, requests, {}, errors)
        # the max is held against the request (a claim's limits are not the user's input)
        for resource, bound in (item.get("max") or {}).items():
            request, enforced = requests.get(resource), _value(bound)
            if request is None:
                errors.append(
                    f"maximum {resource} usage per {kind} is {bound}.  No request is specified"
                )
            elif enforced is not None and (_value(request) or 0) > enforced:
                errors.append(
                    f"maximum {resource} usage per {kind} is {bound}, but request is {request}"
                )
    return errors
