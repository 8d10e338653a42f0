"""`GET /metrics`: the API server's own Prometheus metrics, as kube-apiserver exposes them.

Prometheus setups scrape the API server (kube-prometheus's dashboards and alerts read
`apiserver_request_total` and `apiserver_request_duration_seconds`), and `kubectl get --raw
/metrics` is how users look at a server's load; a local twin that answers 404 there breaks
both. The names, labels and verbs are upstream's:

- `apiserver_request_total{verb,dry_run,group,version,resource,subresource,scope,component,
  code}` for every request (verbs GET, LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE,
  DELETECOLLECTION, CONNECT; scope `resource`, `namespace` or `cluster`);
- `apiserver_request_duration_seconds` (histogram, upstream's buckets) for all but WATCH
  and CONNECT, which last as long as the client stays;
- `apiserver_storage_objects{resource}`: the objects stored per resource;
- `apiserver_longrunning_requests{verb,group,version,resource,subresource,scope,component}`:
  the watches and streams open now;
- `process_start_time_seconds`.

Pure apart from the clock readings the caller makes; `render` writes the text format 0.0.4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reconciler.apiserver.rbac import Attributes

__all__ = ["RequestMetrics", "metric_verb", "stored_counts"]

BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
)  # fmt: skip
_LONG_RUNNING = ("WATCH", "CONNECT")
_STREAMS = frozenset({"exec", "attach", "portforward", "proxy", "log"})

Labels = tuple[tuple[str, str], ...]


def metric_verb(method: str, attributes: Attributes, content_type: str) -> str:
    """upstream's `CleanVerb`: the RBAC verb, upper case, LIST for a collection GET, APPLY
    for a server-side apply patch, CONNECT for streams."""
    if attributes.subresource in _STREAMS and attributes.subresource != "log":
        return "CONNECT"
    verb = attributes.verb
    if verb == "patch" and "apply-patch" in content_type:
        return "APPLY"
    if verb == "create":
        return "POST"
    if verb == "update":
        return "PUT"
    if verb in ("get", "list", "watch", "patch", "delete", "deletecollection"):
        return verb.upper()
    return method.upper()


def _scope(attributes: Attributes) -> str:
    if attributes.name:
        return "resource"
    return "namespace" if attributes.namespace else "cluster"


def _labels(attributes: Attributes, verb: str, **extra: str) -> Labels:
    base = {
        "verb": verb,
        "group": attributes.api_group,
        "version": attributes.api_version,
        "resource": attributes.resource,
        "subresource": attributes.subresource,
        "scope": _scope(attributes),
        "component": "apiserver",
        **extra,
    }
    return tuple(sorted(base.items()))


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
        self.total += seconds
        self.count += 1


def _format(labels: Labels) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels) + "}"


class RequestMetrics:
    """The counters of one server. Only resource requests are counted, as upstream."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self._requests: dict[Labels, int] = {}
        self._durations: dict[Labels, _Histogram] = {}
        self._open: dict[Labels, int] = {}

    def begin(self, attributes: Attributes, verb: str) -> Labels | None:
        """A long-running request starts (None for any other)."""
        if not attributes.resource_request or verb not in _LONG_RUNNING:
            return None
        key = _labels(attributes, verb)
        self._open[key] = self._open.get(key, 0) + 1
        return key

    def end(
        self,
        attributes: Attributes,
        verb: str,
        code: int,
        seconds: float,
        dry_run: bool,
        opened: Labels | None,
    ) -> None:
        if opened is not None:
            self._open[opened] -= 1
        if not attributes.resource_request:
            return
        key = _labels(attributes, verb, code=str(code), dry_run="All" if dry_run else "")
        self._requests[key] = self._requests.get(key, 0) + 1
        if verb not in _LONG_RUNNING:
            timed = _labels(attributes, verb, dry_run="All" if dry_run else "")
            self._durations.setdefault(timed, _Histogram()).observe(seconds)

    def render(self, stored: Iterable[tuple[str, int]]) -> str:
        """The exposition text; `stored` gives (resource, count) pairs."""
        out: list[str] = [
            "# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out "
            "for each verb, dry run value, group, version, resource, scope, component, and "
            "HTTP response code.",
            "# TYPE apiserver_request_total counter",
        ]
        out += [
            f"apiserver_request_total{_format(k)} {v}" for k, v in sorted(self._requests.items())
        ]
        out += [
            "# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution "
            "in seconds for each verb, dry run value, group, version, resource, subresource, "
            "scope and component.",
            "# TYPE apiserver_request_duration_seconds histogram",
        ]
        for key, histogram in sorted(self._durations.items()):
            for bound, count in zip(BUCKETS, histogram.counts, strict=True):
                labels = (*key, ("le", f"{bound:g}"))
                out.append(f"apiserver_request_duration_seconds_bucket{_format(labels)} {count}")
            inf = (*key, ("le", "+Inf"))
            out.append(f"apiserver_request_duration_seconds_bucket{_format(inf)} {histogram.count}")
            out.append(f"apiserver_request_duration_seconds_sum{_format(key)} {histogram.total:g}")
            out.append(f"apiserver_request_duration_seconds_count{_format(key)} {histogram.count}")
        out += [
            "# HELP apiserver_longrunning_requests [STABLE] Gauge of all active long-running "
            "apiserver requests broken out by verb, group, version, resource, scope and "
            "component.",
            "# TYPE apiserver_longrunning_requests gauge",
        ]
        out += [
            f"apiserver_longrunning_requests{_format(k)} {v}" for k, v in sorted(self._open.items())
        ]
        out += [
            "# HELP apiserver_storage_objects [STABLE] Number of stored objects at the time of "
            "last check split by kind.",
            "# TYPE apiserver_storage_objects gauge",
        ]
        out += [
            f"apiserver_storage_objects{_format((('resource', r),))} {n}" for r, n in sorted(stored)
        ]
        out += [
            "# HELP process_start_time_seconds [ALPHA] Start time of the process since unix "
            "epoch in seconds.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self.started_at:.3f}",
        ]
        return "\n".join(out) + "\n"


def stored_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """`group/plural` storage keys -> upstream's `plural.group` resource label."""
    found = []
    for key, count in counts.items():
        group, _, plural = key.partition("/")
        found.append((plural if group in ("core", "") else f"{plural}.{group}", count))
    return found
