"""What an HTTP request asks to do, in RBAC's terms (upstream's `RequestInfoResolver`). Pure.

    GET    /api/v1/namespaces/default/pods            list pods in default
    GET    /api/v1/namespaces/default/pods?watch=1    watch pods in default
    GET    /api/v1/watch/namespaces/default/pods      watch (the legacy prefix)
    GET    /api/v1/pods?fieldSelector=metadata.name=a list, name "a"
    POST   /api/v1/namespaces/default/pods/web/eviction  create pods/eviction, name "web"
    DELETE /apis/apps/v1/namespaces/x/deployments     deletecollection deployments in x
    GET    /api/v1/namespaces/x                       get namespaces "x", namespace "x"
    GET    /version, /api, /apis/apps/v1, /openapi/v3 non-resource: verb "get", the path

A resource URL needs at least `/api/VERSION/RESOURCE` or `/apis/GROUP/VERSION/RESOURCE`;
shorter ones (discovery documents) are non-resource URLs, as upstream.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.apiserver.rbac import Attributes

__all__ = ["resolve"]

_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def _name_from_field_selector(selector: str) -> str:
    """`metadata.name=X` (or `==`) among the terms narrows a list to one name."""
    for term in selector.split(","):
        for op in ("==", "="):
            key, sep, value = term.partition(op)
            if sep and key.strip() == "metadata.name" and not value.startswith("="):
                return value.strip()
    return ""


def resolve(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The request attributes of `method path?query`."""
    parts = [p for p in path.split("/") if p]
    non_resource = Attributes(verb=method.lower(), resource_request=False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    rest = parts[1:]
    group = ""
    if parts[0] == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    verb = _METHOD_VERBS.get(method.upper(), method.lower())
    if rest and rest[0] == "watch":
        verb, rest = "watch", rest[1:]
    if not rest:
        return non_resource
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch") in ("true", "1") else "list"
        name = _name_from_field_selector(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        verb=verb,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        path=path,
    )
