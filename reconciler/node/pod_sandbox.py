"""The pod sandbox: which ports it publishes, its host name, DNS aliases, DNS server and
/etc/hosts.

Every declared container port is published on 127.0.0.1 (its `hostPort` when given, an
ephemeral port otherwise), and so is every port a probe or hook connects to, declared or
not: the host reaches a pod only through these. The ports chosen are recorded on the pod in
the `recon.dev/published-ports` annotation (`{"80/TCP": 41234}`), for users, the service
proxy and the probes.

Its DNS server is the cluster DNS (`dns_server.py`, on the services bridge), unless the pod
asks for the node's resolver (`dnsPolicy: Default`). Docker's embedded DNS in the pod still
answers the names of containers first and forwards the rest there, or, when nothing
answers there, to the host's resolvers (`fallback_resolvers`, read once), as before. Pure
otherwise.
"""

from __future__ import annotations

from typing import Any, Literal

from reconciler.cluster_network import CLUSTER_DOMAIN
from reconciler.node.cluster_dns import DNS_ADDRESS
from reconciler.node.dns_forward import fallback_resolvers
from reconciler.node.probes import probe_ports
from reconciler.runtime.base import ContainerState, PortMapping, SandboxSpec

__all__ = [
    "PUBLISHED_PORTS_ANNOTATION",
    "SANDBOX_ATTEMPT_LABEL",
    "published_ports",
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


def _dns_servers(spec: JSONDict) -> tuple[str, ...]:
    if spec.get("dnsPolicy") == "Default":
        return ()  # the engine's own choice: the node's resolvers, no cluster names
    return (DNS_ADDRESS, *fallback_resolvers())


def sandbox_spec(pod: JSONDict, network: str, image: str, attempt: int) -> SandboxSpec:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "default")
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
    extra_hosts: dict[str, str] = {}
    for alias in spec.get("hostAliases") or []:
        for host in alias.get("hostnames") or []:
            extra_hosts[str(host)] = str(alias.get("ip") or "")
    return SandboxSpec(
        pod_uid=str(meta.get("uid") or ""),
        name=name,
        namespace=namespace,
        image=image,
        network=network,
        labels={SANDBOX_ATTEMPT_LABEL: str(attempt)},
        ports=_port_mappings(pod),
        hostname=hostname,
        domainname=domainname,
        dns_aliases=tuple(dict.fromkeys(aliases)),
        extra_hosts=extra_hosts,
        dns_servers=_dns_servers(spec),
        attempt=attempt,
    )


def published_ports(sandbox: ContainerState) -> dict[int, int]:
    """Container port -> host port on 127.0.0.1 (TCP), from the sandbox as it runs."""
    return {p.container_port: p.host_port for p in sandbox.ports if p.protocol == "tcp"}
