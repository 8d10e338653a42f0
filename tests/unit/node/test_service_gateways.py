"""Service gateways: the plan from Services + Endpoints (pure), and the loop converging the
in-memory runtime to it (real forwarding over Docker is in tests/e2e)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any, cast

from reconciler.cluster_network import SERVICES_NETWORK
from reconciler.node.service_gateway_plan import (
    RUN_SCRIPT,
    backends_text,
    plan_gateway,
    plan_gateways,
)
from reconciler.node.service_gateways import (
    GATEWAY_HASH_LABEL,
    SERVICE_UID_LABEL,
    ServiceGateways,
)
from reconciler.node.services_network import ServicesNetwork
from reconciler.runtime.base import ContainerSpec, ContainerState, ContainerStatus
from reconciler.runtime.memory import MemoryRuntime
from tests.unit.node.conftest import NodeHarness

JSONDict = dict[str, Any]


def _service(name: str = "web", **spec: Any) -> JSONDict:
    body = {"selector": {"app": name}, "clusterIP": "10.96.4.7", **spec}
    body.setdefault("ports", [{"name": "http", "port": 80, "targetPort": 8080}])
    return {"metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"}, "spec": body}


ENDPOINTS = {
    "subsets": [
        {
            "addresses": [{"ip": "10.0.3.6"}, {"ip": "10.0.3.5"}],
            "notReadyAddresses": [{"ip": "10.0.3.7"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    ]
}


def test_plan_forwards_to_ready_addresses_only() -> None:
    plan = plan_gateway(_service(), ENDPOINTS)
    assert plan is not None
    assert plan.cluster_ip == "10.96.4.7" and plan.ports == (80,)
    assert plan.backends == {80: (("10.0.3.5", 8080), ("10.0.3.6", 8080))}
    # The full name only on the services network: Docker answers it with the cluster IP.
    assert plan.local_names == ("web", "web.shop.svc", "web.shop")
    assert plan.qualified_names == ("web.shop.svc.cluster.local", "web.shop.svc", "web.shop")
    assert backends_text(plan.backends[80]) == "10.0.3.5 8080\n10.0.3.6 8080\n"


def test_a_host_network_endpoint_on_loopback_is_reached_at_the_services_bridge() -> None:
    endpoints = {
        "subsets": [
            {
                "addresses": [{"ip": "127.0.0.1"}, {"ip": "10.0.3.5"}],
                "ports": [{"name": "http", "port": 9100, "protocol": "TCP"}],
            }
        ]
    }
    plan = plan_gateway(_service(), endpoints)
    assert plan is not None
    assert plan.backends == {80: (("10.0.3.5", 9100), ("10.111.0.1", 9100))}


def test_plan_matches_endpoint_ports_by_name() -> None:
    service = _service(
        ports=[{"name": "http", "port": 80}, {"name": "admin", "port": 9000}],
    )
    plan = plan_gateway(service, ENDPOINTS)
    assert plan is not None
    assert plan.backends[9000] == ()  # no endpoint port named admin: nothing answers


def test_plan_none_for_headless_external_name_and_no_port() -> None:
    # Headless and ExternalName names are the cluster DNS's (pods' addresses, a CNAME).
    assert plan_gateway(_service(clusterIP="None"), ENDPOINTS) is None
    external = _service(type="ExternalName", externalName="db.example.com.", clusterIP=None)
    assert plan_gateway(external, None) is None
    assert plan_gateway(_service(ports=[]), ENDPOINTS) is None
    # The hash changes with what the container is made of, not with the endpoints.
    one, two = plan_gateway(_service(), ENDPOINTS), plan_gateway(_service(), None)
    assert one is not None and two is not None and one.spec_hash == two.spec_hash
    moved = plan_gateway(_service(clusterIP="10.96.4.8"), None)
    assert moved is not None and moved.spec_hash != one.spec_hash
    assert set(plan_gateways([_service(), _service("db", ports=[])], lambda ns, n: None)) == {
        "uid-web"
    }


async def _gateways(node: NodeHarness, tmp_path: Path) -> ServiceGateways:
    node.runtime.add_local_image("fake/gateway")
    gateways = ServiceGateways(
        node.client,
        node.runtime,
        agent_id="test",
        image="fake/gateway",
        state_dir=tmp_path / "gw",
        services_network=ServicesNetwork(node.runtime),
        retry_interval=0.05,
    )
    await gateways.start()
    return gateways


async def _create_service(node: NodeHarness, name: str, **spec: Any) -> JSONDict:
    body = {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}], **spec}
    return await node.client.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": body,
        }
    )


async def _one(gateways: ServiceGateways, uid: str) -> ContainerState | None:
    found = [g for g in await gateways.gateways() if g.labels.get(SERVICE_UID_LABEL) == uid]
    assert len(found) <= 1
    return found[0] if found and found[0].status is ContainerStatus.RUNNING else None


async def test_gateway_follows_service_and_endpoints(node: NodeHarness, tmp_path: Path) -> None:
    gateways = await _gateways(node, tmp_path)
    try:
        service = await _create_service(node, "web")
        uid = service["metadata"]["uid"]
        first = await node.eventually(lambda: _one(gateways, uid), what="a gateway")
        container = node.runtime._get(first.id)
        assert container.spec is not None
        assert container.spec.network == "recon-default"
        assert "web" in container.spec.network_aliases
        [shared] = container.spec.extra_networks
        assert shared.network == SERVICES_NETWORK
        assert shared.ip_address == service["spec"]["clusterIP"]
        assert shared.aliases[0] == "web.default.svc.cluster.local"
        files = tmp_path / "gw" / uid
        assert (files / "ports").read_text() == "80\n"
        assert (files / "backends-80").read_text() == ""

        # Endpoints change: only the file is rewritten, the container stays.
        await node.client.create(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "web", "namespace": "default"},
                "subsets": [
                    {"addresses": [{"ip": "10.0.0.9"}], "ports": [{"name": "http", "port": 81}]}
                ],
            }
        )

        async def rewritten() -> bool:
            return (files / "backends-80").read_text() == "10.0.0.9 81\n"

        await node.eventually(rewritten, what="backends rewritten")
        assert (await _one(gateways, uid)) == first

        # A new port changes the spec hash: re-created.
        ports = [{"name": "http", "port": 80}, {"name": "alt", "port": 8081}]
        await node.client.patch(
            "v1", "Service", "web", {"spec": {"ports": ports}}, namespace="default"
        )

        async def recreated() -> ContainerState | None:
            now = await _one(gateways, uid)
            return now if now is not None and now.id != first.id else None

        second = await node.eventually(recreated, what="a re-created gateway")
        assert second.labels[GATEWAY_HASH_LABEL] != first.labels[GATEWAY_HASH_LABEL]

        # Killed behind our back (an engine restart): started again.
        await node.runtime.remove_container(second.id)
        await node.eventually(lambda: _one(gateways, uid), what="a gateway again")

        # Deleted Service: gateway and files gone.
        await node.client.delete("v1", "Service", "web", namespace="default")

        async def gone() -> bool:
            return not await gateways.gateways() and not files.exists()

        await node.eventually(gone, what="gateway removed")
    finally:
        await gateways.stop()


async def test_restarted_gateways_are_adopted_not_duplicated(
    node: NodeHarness, tmp_path: Path
) -> None:
    gateways = await _gateways(node, tmp_path)
    service = await _create_service(node, "api")
    uid = service["metadata"]["uid"]
    first = await node.eventually(lambda: _one(gateways, uid), what="a gateway")
    await gateways.stop()
    again = await _gateways(node, tmp_path)
    try:
        await asyncio.sleep(0.2)
        assert [g.id for g in await again.gateways()] == [first.id]
    finally:
        await again.stop()


async def test_a_taken_cluster_ip_is_reported_and_retried(
    node: NodeHarness, tmp_path: Path
) -> None:
    runtime: MemoryRuntime = node.runtime
    network = await ServicesNetwork(runtime).ensure()
    assert network == SERVICES_NETWORK
    runtime.add_local_image("fake/gateway")
    # Another server on the same engine holds the address this Service will ask for.
    intruder = await runtime.create_container(
        ContainerSpec(
            name="intruder",
            image="fake/gateway",
            network=network,
            ip_address="10.96.200.200",
        )
    )
    gateways = await _gateways(node, tmp_path)
    try:
        service = await _create_service(node, "dup", clusterIP="10.96.200.200")
        uid = service["metadata"]["uid"]

        async def warned() -> bool:
            events = await node.client.list("v1", "Event", namespace="default")
            return any(e.get("reason") == "FailedServiceGateway" for e in events.items)

        await node.eventually(warned, what="a FailedServiceGateway event")
        assert await _one(gateways, uid) is None
        # Retried on a doubling back-off (0.05 s, 0.1 s, 0.2 s, ...), not on every event
        # of its own failed container: a handful of attempts in half a second.
        attempts = 0
        create = runtime.create_container

        async def counted(spec: ContainerSpec) -> str:
            nonlocal attempts
            attempts += 1
            return await create(spec)

        runtime.create_container = counted  # type: ignore[method-assign]
        await asyncio.sleep(0.5)
        assert 1 <= attempts <= 5
        runtime.create_container = create  # type: ignore[method-assign]
        await runtime.remove_container(intruder)
        await node.eventually(lambda: _one(gateways, uid), what="the gateway, retried")
    finally:
        await gateways.stop()


# -- UDP ports ---------------------------------------------------------------------------------

UDP_ENDPOINTS = {
    "subsets": [
        {
            "addresses": [{"ip": "10.0.3.6"}, {"ip": "10.0.3.5"}],
            "notReadyAddresses": [{"ip": "10.0.3.7"}],
            "ports": [
                {"name": "dns", "port": 5353, "protocol": "UDP"},
                {"name": "dns", "port": 5354, "protocol": "TCP"},
            ],
        }
    ]
}
DNS_PORTS = [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]


def test_a_udp_only_service_gets_a_gateway_that_relays_to_ready_udp_endpoints() -> None:
    plan = plan_gateway(_service(ports=DNS_PORTS), UDP_ENDPOINTS)
    assert plan is not None
    assert plan.ports == () and plan.backends == {}  # no nc listener: the script sleeps
    assert plan.udp_ports == (53,)
    assert plan.udp_backends == {53: (("10.0.3.5", 5353), ("10.0.3.6", 5353))}
    assert plan.local_names == ("web", "web.shop.svc", "web.shop")
    assert "exec sleep" in RUN_SCRIPT.splitlines()[1] and "/gw/ports" in RUN_SCRIPT


def test_tcp_and_udp_ports_of_one_name_are_matched_by_protocol() -> None:
    ports = [*DNS_PORTS, {"name": "dns", "port": 53, "protocol": "TCP", "targetPort": 5354}]
    plan = plan_gateway(_service(ports=ports), UDP_ENDPOINTS)
    assert plan is not None
    assert plan.backends == {53: (("10.0.3.5", 5354), ("10.0.3.6", 5354))}
    assert plan.udp_backends == {53: (("10.0.3.5", 5353), ("10.0.3.6", 5353))}
    # UDP ports are relayed from outside the container: they never re-create it.
    tcp_only = plan_gateway(_service(ports=ports[1:]), UDP_ENDPOINTS)
    assert tcp_only is not None and tcp_only.spec_hash == plan.spec_hash


class FakeNamespaces:
    """Stands in for entering gateway namespaces: sockets are made on 127.0.0.1 of this
    process, the service port on an ephemeral one, and an endpoint `ip:port` is reached at
    127.0.0.1:port (where the test's UDP echo server is)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, object]] = []

    async def open(
        self, netns: str, bind: tuple[str, int] | None, connect: tuple[str, int] | None
    ) -> socket.socket:
        self.calls.append((netns, bind, connect))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        if bind is not None:
            sock.bind(("127.0.0.1", 0))
        if connect is not None:
            sock.connect(("127.0.0.1", connect[1]))
        return sock


class UdpEcho(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        self.transport.sendto(b"echo:" + data, addr)


async def _ask_udp(address: tuple[str, int], text: bytes, timeout: float = 2.0) -> bytes | None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_sendto(sock, text, address)
        try:
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 512), timeout)
        except TimeoutError:
            return None
        return bytes(data)


async def test_udp_ports_are_relayed_inside_the_gateways_namespace(
    node: NodeHarness, tmp_path: Path
) -> None:
    fake = FakeNamespaces()
    runtime: MemoryRuntime = node.runtime

    async def namespace(container_id: str) -> str:
        runtime._get(container_id)
        return f"/proc/{container_id[:8]}/ns/net"

    runtime.network_namespace = namespace  # type: ignore[method-assign]
    runtime.add_local_image("fake/gateway")
    gateways = ServiceGateways(
        node.client,
        runtime,
        agent_id="test",
        image="fake/gateway",
        state_dir=tmp_path / "gw",
        services_network=ServicesNetwork(runtime),
        retry_interval=0.05,
        udp_opener=fake.open,
    )
    await gateways.start()
    loop = asyncio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(UdpEcho, local_addr=("127.0.0.1", 0))
    echo_port = server.get_extra_info("sockname")[1]
    try:
        service = await _create_service(node, "dns", ports=DNS_PORTS)
        uid = service["metadata"]["uid"]
        first = await node.eventually(lambda: _one(gateways, uid), what="a gateway")
        assert (tmp_path / "gw" / uid / "ports").read_text() == ""

        async def relay() -> Any:
            return gateways.udp.relays.get((uid, 53))

        relayed = await node.eventually(relay, what="a UDP relay")
        netns = f"/proc/{first.id[:8]}/ns/net"
        assert fake.calls == [(netns, ("0.0.0.0", 53), None)]
        assert await _ask_udp(relayed.address, b"hi", timeout=0.2) is None  # no endpoint

        await node.client.create(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "dns", "namespace": "default"},
                "subsets": [
                    {
                        "addresses": [{"ip": "10.0.0.9"}],
                        "ports": [{"name": "dns", "port": echo_port, "protocol": "UDP"}],
                    }
                ],
            }
        )

        async def answered() -> bytes | None:
            return await _ask_udp(relayed.address, b"hi", timeout=0.2)

        assert await node.eventually(answered, what="an answer") == b"echo:hi"
        assert (netns, None, ("10.0.0.9", echo_port)) in fake.calls  # made in the gateway

        # The gateway is re-created (a new namespace): the relay is opened there again.
        await runtime.remove_container(first.id)

        async def moved() -> Any:
            now = gateways.udp.relays.get((uid, 53))
            return now if now is not None and now is not relayed else None

        again = await node.eventually(moved, what="a relay in the new gateway")
        assert relayed.closed
        assert (
            await node.eventually(
                lambda: _ask_udp(again.address, b"back", timeout=0.2), what="answers again"
            )
            == b"echo:back"
        )

        # The Service goes: so does its relay.
        await node.client.delete("v1", "Service", "dns", namespace="default")

        async def closed() -> bool:
            return not gateways.udp.relays and again.closed

        await node.eventually(closed, what="the relay closed")
    finally:
        server.close()
        await gateways.stop()


async def test_a_namespace_that_cannot_be_entered_is_reported_once(
    node: NodeHarness, tmp_path: Path
) -> None:
    """The in-memory runtime has no namespaces, as a server without CAP_SYS_ADMIN cannot
    enter one: a Warning, once, and the gateway still holds the names."""
    gateways = await _gateways(node, tmp_path)
    try:
        service = await _create_service(node, "dns", ports=DNS_PORTS)
        uid = service["metadata"]["uid"]
        await node.eventually(lambda: _one(gateways, uid), what="a gateway")

        async def warnings() -> list[JSONDict]:
            events = await node.client.list("v1", "Event", namespace="default")
            return [e for e in events.items if e.get("reason") == "FailedServiceGateway"]

        [warning] = await node.eventually(warnings, what="a FailedServiceGateway event")
        assert "cannot relay UDP port 53" in warning["message"]
        assert warning["involvedObject"]["name"] == "dns"
        for port in (81, 82):  # endpoint changes try again, but say it no more
            await node.client.patch(
                "v1",
                "Service",
                "dns",
                {"metadata": {"labels": {"p": str(port)}}},
                namespace="default",
            )
        await asyncio.sleep(0.2)
        assert len(await warnings()) == 1 and not gateways.udp.relays
    finally:
        await gateways.stop()
