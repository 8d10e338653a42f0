"""Parsing of Kubernetes resource URLs into what they address.

    /api/v1/pods                                   list pods in all namespaces
    /api/v1/namespaces/default/pods/web/status     one pod's status subresource
    /api/v1/namespaces/default                     the Namespace object "default"
    /apis/apps/v1/namespaces/x/deployments/web     one Deployment
    /api/v1/watch/namespaces/x/pods                the legacy watch form

Pure: the handler looks the (group, version, plural) up in the registry afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class ResourcePath:
    group: str
    version: str
    plural: str
    namespace: str | None  # None: cluster-scoped resource, or a list across namespaces
    name: str | None
    subresource: str | None
    legacy_watch: bool = False


def parse(path: str) -> ResourcePath | None:
    """The addressed resource, or None when the path is not a resource URL."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch, rest = True, rest[1:]
    if not rest:
        return None
    if rest[0] == "namespaces" and group == "":
        # /api/v1/namespaces[/NAME[/status|finalize | /PLURAL[/NAME[/SUB]]]]
        if len(rest) == 1:
            return ResourcePath(group, version, "namespaces", None, None, None, legacy_watch)
        if len(rest) == 2:
            return ResourcePath(group, version, "namespaces", None, rest[1], None, legacy_watch)
        if len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES:
            return ResourcePath(group, version, "namespaces", None, rest[1], rest[2], legacy_watch)
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            return None
        return ResourcePath(
            group,
            version,
            rest[0],
            namespace,
            rest[1] if len(rest) > 1 else None,
            rest[2] if len(rest) > 2 else None,
            legacy_watch,
        )
    if len(rest) > 3:
        return None
    return ResourcePath(
        group,
        version,
        rest[0],
        None,
        rest[1] if len(rest) > 1 else None,
        rest[2] if len(rest) > 2 else None,
        legacy_watch,
    )
