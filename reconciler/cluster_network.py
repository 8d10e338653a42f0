"""The cluster's address plan on one host, shared by the API server and the node agent.

Service cluster IPs come from `SERVICE_CIDR`, as on a default Kubernetes cluster. The node
agent makes them reachable: it creates one Docker bridge network (`SERVICES_NETWORK`) over
that whole range, gives each Service's gateway container its cluster IP there, and attaches
every pod sandbox to it. The engine hands the sandboxes their addresses on that network from
`POD_ADDRESS_RANGE`, so the API server never allocates a cluster IP from it; the bridge
itself takes `SERVICES_BRIDGE_ADDRESS`, leaving 10.96.0.1 to the `kubernetes` Service.
"""

from __future__ import annotations

import ipaddress

__all__ = [
    "CLUSTER_DOMAIN",
    "POD_ADDRESS_RANGE",
    "SERVICES_BRIDGE_ADDRESS",
    "SERVICES_NETWORK",
    "SERVICE_CIDR",
    "dns_search",
]

SERVICE_CIDR = ipaddress.IPv4Network("10.96.0.0/12")
POD_ADDRESS_RANGE = ipaddress.IPv4Network("10.111.0.0/16")
SERVICES_BRIDGE_ADDRESS = ipaddress.IPv4Address("10.111.0.1")
SERVICES_NETWORK = "recon-services"
CLUSTER_DOMAIN = "cluster.local"


def dns_search(namespace: str) -> tuple[str, ...]:
    """A pod's resolv.conf search list, the kubelet's: `web` finds the Service `web` of the
    pod's own namespace, `web.other` the one in `other`."""
    return (f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN)
