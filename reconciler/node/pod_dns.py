"""A pod's resolv.conf, as the kubelet writes it from `dnsPolicy` and `dnsConfig`.

Users tune DNS per pod (`ndots:2` to spare the search list, an extra search domain, their
own resolver with `dnsPolicy: None`) and expect what the kubelet does:

- `ClusterFirst` (the default): the cluster DNS, the namespace's search list, `ndots:5`;
  on the host's network (`hostNetwork: true`) it falls back to `Default`, as upstream;
- `ClusterFirstWithHostNet`: the cluster DNS even on the host's network;
- `Default`: the node's resolv.conf (the engine's own choice when nothing is added);
- `None`: only what `dnsConfig` says.

`dnsConfig` is then appended: nameservers and searches after the policy's (duplicates
dropped), options merged by name (the pod's value wins). Pure, apart from
`read_host_resolv_conf`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.cluster_network import dns_search

__all__ = ["HostResolvConf", "PodDns", "pod_dns", "read_host_resolv_conf"]

CLUSTER_OPTIONS = ("ndots:5",)


@dataclass(frozen=True)
class HostResolvConf:
    """The node's resolv.conf: the resolvers a container can reach, its search list and
    options."""

    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodDns:
    """What the sandbox is given. All empty: the engine's own choice (the node's)."""

    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    cluster: bool = False
    """Whether the cluster DNS answers first (the policy resolved to ClusterFirst)."""


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _merge_options(base: Sequence[str], extra: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """kubelet's mergeDNSOptions: by name, the pod's `dnsConfig` option replacing the
    policy's (`ndots:5` + {name: ndots, value: "2"} -> `ndots:2`)."""
    merged: dict[str, str] = {}
    for text in base:
        merged[text.split(":", 1)[0]] = text
    for option in extra:
        name = str(option.get("name") or "")
        if not name:
            continue
        value = option.get("value")
        merged[name] = f"{name}:{value}" if value not in (None, "") else name
    return tuple(merged.values())


def pod_dns(
    spec: Mapping[str, Any],
    namespace: str,
    cluster_servers: Sequence[str],
    host: HostResolvConf,
) -> PodDns:
    """The pod's DNS settings. `cluster_servers`: the cluster DNS and what follows it (the
    node's resolvers a container can reach)."""
    policy = str(spec.get("dnsPolicy") or "ClusterFirst")
    host_network = spec.get("hostNetwork") is True
    if policy == "ClusterFirst" and host_network:
        policy = "Default"
    config = spec.get("dnsConfig") if isinstance(spec.get("dnsConfig"), Mapping) else None
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        base = PodDns(
            tuple(cluster_servers),
            (*dns_search(namespace), *host.searches),
            CLUSTER_OPTIONS,
            cluster=True,
        )
    elif policy == "None":
        base = PodDns()
    elif config is None:
        return PodDns()  # Default: the engine copies the node's resolv.conf
    else:
        base = PodDns(host.servers, host.searches, host.options)
    if config is None:
        return base
    return PodDns(
        _unique([*base.servers, *(str(s) for s in config.get("nameservers") or [])]),
        _unique([*base.searches, *(str(s) for s in config.get("searches") or [])]),
        _merge_options(
            base.options, [o for o in config.get("options") or [] if isinstance(o, dict)]
        ),
        cluster=base.cluster,
    )


def read_host_resolv_conf(
    servers: Sequence[str], path: Path = Path("/etc/resolv.conf")
) -> HostResolvConf:
    """The node's search list and options (`servers`: its resolvers a container can reach,
    found by the caller)."""
    searches: list[str] = []
    options: list[str] = []
    try:
        text = path.read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] in ("search", "domain"):
            searches = words[1:]  # the last one wins, as in libc
        elif words[0] == "options":
            options.extend(words[1:])
    return HostResolvConf(tuple(servers), tuple(searches), tuple(options))
