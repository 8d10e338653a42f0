"""Discovery documents: how kubectl and client libraries learn which resources exist.

`/api`, `/apis`, `/apis/G` and `/api/v1` / `/apis/G/V` in the legacy (non-aggregated)
format, which every client still accepts: a client asking for the aggregated
`apidiscovery.k8s.io/v2` format gets these JSON documents with a plain `application/json`
content type and falls back, as it does against older servers.
"""

from __future__ import annotations

from typing import Any

from reconciler.apiserver.resources import ResourceRegistry, ResourceType

JSONDict = dict[str, Any]

KUBERNETES_VERSION = {"major": "1", "minor": "32"}


def version_info(git_version: str) -> JSONDict:
    return {
        "major": KUBERNETES_VERSION["major"],
        "minor": KUBERNETES_VERSION["minor"],
        "gitVersion": git_version,
        "gitCommit": "recon",
        "gitTreeState": "clean",
        "buildDate": "2026-11-22T00:00:00Z",
        "goVersion": "n/a (recon, Python)",
        "compiler": "cpython",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> JSONDict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, versions: list[str]) -> JSONDict:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: ResourceRegistry) -> JSONDict:
    groups = registry.group_versions()
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name, groups[name]) for name in sorted(groups) if name],
    }


def api_group(registry: ResourceRegistry, name: str) -> JSONDict | None:
    versions = registry.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource_entry(t: ResourceType) -> JSONDict:
    entry: JSONDict = {
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": list(t.verbs),
    }
    if t.short_names:
        entry["shortNames"] = list(t.short_names)
    if t.categories:
        entry["categories"] = list(t.categories)
    return entry


def _subresource_entries(t: ResourceType) -> list[JSONDict]:
    out = []
    if "status" in t.subresources:
        out.append(
            {
                "name": f"{t.plural}/status",
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    if "scale" in t.subresources:
        out.append(
            {
                "name": f"{t.plural}/scale",
                "singularName": "",
                "namespaced": t.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }
        )
    for stored in ("ephemeralcontainers", "resize"):
        if stored in t.subresources:
            out.append(
                {
                    "name": f"{t.plural}/{stored}",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    for body_sub in t.body_subresources:
        out.append(
            {
                "name": f"{t.plural}/{body_sub.name}",
                "singularName": "",
                "namespaced": t.namespaced,
                "group": body_sub.group,
                "version": body_sub.version,
                "kind": body_sub.kind,
                "verbs": list(body_sub.verbs),
            }
        )
    for sub in sorted(t.extra_subresources):
        out.append(
            {
                "name": f"{t.plural}/{sub}",
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "create"],
            }
        )
    return out


def api_resource_list(registry: ResourceRegistry, group: str, version: str) -> JSONDict | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources: list[JSONDict] = []
    for t in types:
        resources.append(_resource_entry(t))
        resources.extend(_subresource_entries(t))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
