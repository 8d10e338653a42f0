"""The pod sandbox: which ports it publishes, its host name, DNS aliases, DNS server and
/etc/hosts.

Every declared container port is published on 127.0.0.1 (its `hostPort` when given, an
ephemeral port otherwise), and so is every port a probe or hook connects to, declared or
not: the host reaches a pod only through these. The ports chosen are recorded on the pod in
the `recon.dev/published-ports` annotation (`{"80/TCP": 41234, "53/UDP": 41235}`), for
users, the service proxy and the probes.

Its DNS comes from the pod's `dnsPolicy` and `dnsConfig` (`pod_dns.py`): by default the
cluster DNS (`dns_server.py`, on the services bridge), then the host's resolvers
(`fallback_resolvers`, read once). Docker's embedded DNS in the pod still answers the names
of containers first and forwards the rest there.

A pod on the host's network (`hostNetwork: true`) gets a sandbox in the host's network
namespace: nothing is published (its container ports are host ports already, and the
annotation says so, port for port), no names on a namespace network, the node's host name.
`hostPID` and `hostIPC` put the sandbox, and so the pod's containers, in the host's PID and
IPC namespaces. Pure otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

from reconciler.cluster_network import CLUSTER_DOMAIN
from reconciler.node.cluster_dns import DNS_ADDRESS
from reconciler.node.dns_forward import fallback_resolvers
from reconciler.node.pod_dns import HostResolvConf, PodDns, pod_dns, read_host_resolv_conf
from reconciler.node.probes import probe_ports
from reconciler.runtime.base import HOST_NETWORK, ContainerState, PortMapping, SandboxSpec

__all__ = [
    "PUBLISHED_PORTS_ANNOTATION",
    "SANDBOX_ATTEMPT_LABEL",
    "on_host_network",
    "published_port_keys",
    "published_ports",
    "sandbox_dns",
    "sandbox_spec",
]

JSONDict = dict[str, Any]

PUBLISHED_PORTS_ANNOTATION = "recon.dev/published-ports"
SANDBOX_ATTEMPT_LABEL = "recon.dev/sandbox-attempt"


def _port_mappings(pod: JSONDict) -> tuple[PortMapping, ...]:
    spec = pod.get("spec") or {}
    mappings: dict[tuple[int, str], PortMapping] = {}
    every = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    for container in every:
        for port in container.get("ports") or []:
            number = int(port.get("containerPort") or 0)
            protocol: Literal["tcp", "udp"] = (
                "udp" if str(port.get("protocol") or "TCP").upper() == "UDP" else "tcp"
            )
            if not number or (number, protocol) in mappings:
                continue
            mappings[(number, protocol)] = PortMapping(
                number, protocol, host_port=int(port.get("hostPort") or 0)
            )
        for number in probe_ports(container):
            mappings.setdefault((number, "tcp"), PortMapping(number, "tcp"))
    return tuple(mappings.values())


def on_host_network(pod: JSONDict) -> bool:
    return (pod.get("spec") or {}).get("hostNetwork") is True


def sandbox_dns(pod: JSONDict) -> PodDns:
    """The pod's resolv.conf settings, with this host's resolvers."""
    spec = pod.get("spec") or {}
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    return pod_dns(spec, namespace, (DNS_ADDRESS, *fallback_resolvers()), _host_conf())


@functools.cache
def _host_conf() -> HostResolvConf:
    """The node's resolv.conf, read once per process as `fallback_resolvers` is: a pod
    start does not read the file again."""
    return read_host_resolv_conf(fallback_resolvers())


def sandbox_spec(pod: JSONDict, network: str, image: str, attempt: int) -> SandboxSpec:
    """The sandbox of `pod`; `network` is its namespace's (unused on the host's network)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "default")
    dns = sandbox_dns(pod)
    on_host = SandboxSpec(
        pod_uid=str(meta.get("uid") or ""),
        name=name,
        namespace=namespace,
        image=image,
        network=HOST_NETWORK,
        labels={SANDBOX_ATTEMPT_LABEL: str(attempt)},
        extra_hosts=_extra_hosts(spec),
        dns_servers=dns.servers,
        dns_search=dns.searches,
        dns_options=dns.options,
        host_pid=spec.get("hostPID") is True,
        host_ipc=spec.get("hostIPC") is True,
        attempt=attempt,
    )
    if on_host_network(pod):
        return on_host
    hostname = str(spec.get("hostname") or name)[:63]
    aliases = [name]
    subdomain = spec.get("subdomain")
    domainname = f"{subdomain}.{namespace}.svc.{CLUSTER_DOMAIN}" if subdomain else None
    if subdomain:
        aliases += [
            f"{hostname}.{subdomain}",
            f"{hostname}.{subdomain}.{namespace}",
            f"{hostname}.{subdomain}.{namespace}.svc",
            f"{hostname}.{subdomain}.{namespace}.svc.cluster.local",
        ]
    return dataclasses.replace(
        on_host,
        network=network,
        ports=_port_mappings(pod),
        hostname=hostname,
        domainname=domainname,
        dns_aliases=tuple(dict.fromkeys(aliases)),
    )


def _extra_hosts(spec: JSONDict) -> dict[str, str]:
    extra_hosts: dict[str, str] = {}
    for alias in spec.get("hostAliases") or []:
        for host in alias.get("hostnames") or []:
            extra_hosts[str(host)] = str(alias.get("ip") or "")
    return extra_hosts


def published_ports(sandbox: ContainerState, pod: JSONDict) -> dict[int, int]:
    """Container port -> host port on 127.0.0.1 (TCP), from the sandbox as it runs; on the
    host's network each port is its own."""
    if on_host_network(pod):
        return {
            m.container_port: m.container_port for m in _port_mappings(pod) if m.protocol == "tcp"
        }
    return {p.container_port: p.host_port for p in sandbox.ports if p.protocol == "tcp"}


def published_port_keys(sandbox: ContainerState, pod: JSONDict) -> dict[str, int]:
    """The `recon.dev/published-ports` annotation's map, TCP and UDP: `"8080/TCP"`,
    `"5353/UDP"` -> host port on 127.0.0.1, in port order."""
    if on_host_network(pod):
        pairs = [(m.container_port, m.protocol, m.container_port) for m in _port_mappings(pod)]
    else:
        pairs = [(p.container_port, p.protocol, p.host_port) for p in sandbox.ports]
    return {f"{port}/{proto.upper()}": host for port, proto, host in sorted(pairs)}
