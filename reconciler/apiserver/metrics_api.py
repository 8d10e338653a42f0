"""The resource metrics API (`metrics.k8s.io/v1beta1`), as metrics-server serves it through
API aggregation on a cluster: `kubectl top pod|node` and autoscalers read it.

Read-only (get and list; label selectors, and field selectors on `metadata.name` /
`metadata.namespace`); the objects come from whoever measures the node (the node agent's
collector, `node/metrics.py`), given to the server as a `MetricsSource`. Without one the
group is not in discovery, so kubectl says "Metrics API not available", as on a cluster
without metrics-server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from reconciler.apiserver import errors
from reconciler.apiserver.errors import ApiError
from reconciler.selectors import SelectorError, parse_field_selector, parse_label_selector

__all__ = [
    "GROUP",
    "VERSION",
    "MetricsSource",
    "answer",
    "api_group",
    "group_entry",
    "resource_list",
]

JSONDict = dict[str, Any]

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"


class MetricsSource(Protocol):
    def pod_metrics(self) -> list[JSONDict]: ...

    def node_metrics(self) -> list[JSONDict]: ...


MetricsProvider = Callable[[], MetricsSource | None]


def group_entry() -> JSONDict:
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [version], "preferredVersion": version}


def api_group() -> JSONDict:
    return {"kind": "APIGroup", "apiVersion": "v1", **group_entry()}


def resource_list() -> JSONDict:
    def entry(plural: str, kind: str, namespaced: bool) -> JSONDict:
        return {
            "name": plural,
            "singularName": "",
            "namespaced": namespaced,
            "kind": kind,
            "verbs": ["get", "list"],
        }

    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [entry("nodes", "NodeMetrics", False), entry("pods", "PodMetrics", True)],
    }


def _selected(items: list[JSONDict], query: dict[str, str]) -> list[JSONDict]:
    try:
        labels = (
            parse_label_selector(query["labelSelector"]) if query.get("labelSelector") else None
        )
        fields = (
            parse_field_selector(query["fieldSelector"]) if query.get("fieldSelector") else None
        )
    except SelectorError as e:
        raise errors.bad_request(f"unable to parse requirement: {e}") from e
    if fields is not None:
        for requirement in fields.requirements:
            if requirement.field not in ("metadata.name", "metadata.namespace"):
                raise errors.bad_request(f'field label not supported: "{requirement.field}"')
    chosen = []
    for item in items:
        meta = item.get("metadata") or {}
        if labels is not None and not labels.matches(meta.get("labels") or {}):
            continue
        if fields is not None and not fields.matches(item):
            continue
        chosen.append(item)
    return chosen


def answer(method: str, parts: list[str], query: dict[str, str], source: MetricsSource) -> JSONDict:
    """The response to a request under /apis/metrics.k8s.io/v1beta1/ (`parts`: the path
    after it, split at "/"), or an ApiError."""
    if method != "GET":
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method: {method}")
    namespace: str | None = None
    if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] == "pods":
        namespace, parts = parts[1], parts[2:]
    if not parts or parts[0] not in ("pods", "nodes") or len(parts) > 2:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if parts[0] == "nodes" and namespace is not None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    pods = parts[0] == "pods"
    items = source.pod_metrics() if pods else source.node_metrics()
    if namespace is not None:
        items = [i for i in items if (i.get("metadata") or {}).get("namespace") == namespace]
    resource = "podmetrics" if pods else "nodemetrics"
    if len(parts) == 2:
        for item in items:
            if (item.get("metadata") or {}).get("name") == parts[1]:
                return item
        name = f"{namespace}/{parts[1]}" if namespace else parts[1]
        raise errors.not_found(resource, name, GROUP)
    return {
        "kind": "PodMetricsList" if pods else "NodeMetricsList",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": _selected(items, query),
    }
