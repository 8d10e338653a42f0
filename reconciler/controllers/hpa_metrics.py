"""Where the HorizontalPodAutoscaler's numbers come from: the resource metrics API's shape.

The HPA controller (`hpa.py`) reads pod usage through a `PodMetricsSource`, an async
callable injected by whoever builds the controller (the embedded plane wires the node
agent's collector; tests pass a fake). The controller never imports the node agent or the
runtime: an import-linter contract keeps controllers on the API's side of the line.

This module turns the PodMetrics items such a source returns into per-pod values in
milli-units, as upstream's metrics client does (`MilliValue()` of each container's usage,
summed per pod), and formats milli-values back into quantities for the HPA's status. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reconciler.clock import maybe_rfc3339
from reconciler.durations import parse_go_duration
from reconciler.quantity import QuantityError, parse_quantity

__all__ = [
    "MetricsError",
    "PodMetric",
    "PodMetricsSource",
    "format_milli",
    "milli_value",
    "parse_duration",
    "pod_resource_metrics",
]

JSONDict = dict[str, Any]

PodMetricsSource = Callable[[str, str], Awaitable[list[JSONDict]]]
"""(namespace, labelSelector string) -> PodMetrics items as metrics.k8s.io/v1beta1 returns them:
{"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
 "metadata": {"name": ..., "namespace": ..., "labels": {...}},
 "timestamp": "2026-12-03T12:00:00Z", "window": "15s",
 "containers": [{"name": "c", "usage": {"cpu": "1234567n", "memory": "2048Ki"}}]}"""


class MetricsError(Exception):
    """The metrics answer cannot be used (none at all, or a named container is absent)."""


@dataclass(frozen=True)
class PodMetric:
    """One pod's usage of one resource: `value` in milli-units (millicores, millibytes)."""

    value: int
    timestamp: datetime | None = None
    window: timedelta = timedelta(0)


def milli_value(quantity: str | int | float) -> int:
    """A quantity in milli-units, rounded up as Kubernetes' `MilliValue()` does."""
    return math.ceil(parse_quantity(quantity) * 1000)


_DECIMAL_SUFFIXES = {-3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def format_milli(milli: int) -> str:
    """A milli-value as its canonical DecimalSI quantity, as `resource.NewMilliQuantity(v,
    DecimalSI).String()` prints it: the largest power-of-1000 suffix that keeps the number
    whole. 6 -> "6m", 1500 -> "1500m", 2000 -> "2", 12_000_000 -> "12k", and bytes stay
    bytes: 20 MiB (20_971_520_000 milli) -> "20971520"."""
    if milli == 0:
        return "0"
    sign = "-" if milli < 0 else ""
    mantissa, exponent = abs(milli), -3
    while mantissa % 1000 == 0 and exponent < 18:
        mantissa //= 1000
        exponent += 3
    return f"{sign}{mantissa}{_DECIMAL_SUFFIXES[exponent]}"


def parse_duration(text: str) -> timedelta:
    """A Go duration as metav1.Duration serialises it ("15s", "1m0s", "500ms"); zero when
    it does not parse (the window only refines readiness checks, it never decides alone)."""
    try:
        return timedelta(seconds=parse_go_duration(text))
    except ValueError:
        return timedelta(0)


def _timestamp(item: JSONDict) -> datetime | None:
    return maybe_rfc3339(item.get("timestamp"))


def _usage(container: JSONDict, resource: str) -> int | None:
    value = (container.get("usage") or {}).get(resource)
    if value is None:
        return None
    try:
        return milli_value(value)
    except QuantityError:
        return None


def pod_resource_metrics(
    items: list[JSONDict], resource: str, container: str = ""
) -> tuple[dict[str, PodMetric], datetime | None]:
    """Per-pod usage of `resource` (all containers summed, or only `container`), and the
    first item's timestamp, as upstream's `GetResourceMetric`.

    A pod whose containers do not all report the resource is left out (it counts as a pod
    with missing metrics). With `container`, a pod whose metrics lack that container is an
    error, as upstream: the target's pods do not run what the HPA names."""
    if not items:
        raise MetricsError("no metrics returned from resource metrics API")
    out: dict[str, PodMetric] = {}
    for item in items:
        name = str((item.get("metadata") or {}).get("name") or "")
        containers = [c for c in item.get("containers") or [] if isinstance(c, dict)]
        stamp, window = _timestamp(item), parse_duration(str(item.get("window") or ""))
        if container:
            match = next((c for c in containers if c.get("name") == container), None)
            if match is None:
                namespace = (item.get("metadata") or {}).get("namespace")
                raise MetricsError(
                    f"failed to get container metrics: container {container} not present in "
                    f"metrics for pod {namespace}/{name}"
                )
            value = _usage(match, resource)
            if value is not None:
                out[name] = PodMetric(value, stamp, window)
            continue
        values = [_usage(c, resource) for c in containers]
        if values and all(v is not None for v in values):
            out[name] = PodMetric(sum(v for v in values if v is not None), stamp, window)
    return out, _timestamp(items[0])
