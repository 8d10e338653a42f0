"""The `recon.dev/published-ports` annotation names UDP ports too (`"53/UDP"`), which the
node-port proxy routes UDP node ports to."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.node.conftest import NodeHarness

JSONDict = dict[str, Any]


def _published(pod: JSONDict) -> dict[str, int]:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get("recon.dev/published-ports")
    return dict(json.loads(text)) if text else {}


async def test_tcp_and_udp_ports_are_published_and_annotated(node: NodeHarness) -> None:
    ports = [
        {"containerPort": 80},
        {"containerPort": 53, "protocol": "UDP"},
        {"containerPort": 53, "protocol": "TCP"},
    ]
    await node.create_pod(
        "dns", {"containers": [{"name": "c", "image": "example/dns:1", "ports": ports}]}
    )
    pod = await node.wait_pod("dns", lambda p: len(_published(p)) == 3, what="three ports")
    published = _published(pod)
    assert list(published) == ["53/TCP", "53/UDP", "80/TCP"]  # in port order
    assert all(port > 0 for port in published.values())


async def test_on_the_hosts_network_each_port_is_its_own(node: NodeHarness) -> None:
    ports = [{"containerPort": 9153, "protocol": "UDP"}, {"containerPort": 9100}]
    await node.create_pod(
        "exporter",
        {
            "hostNetwork": True,
            "containers": [{"name": "c", "image": "example/dns:1", "ports": ports}],
        },
    )
    pod = await node.wait_pod("exporter", lambda p: bool(_published(p)), what="annotated")
    assert _published(pod) == {"9100/TCP": 9100, "9153/UDP": 9153}
