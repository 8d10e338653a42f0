"""The NodePort/LoadBalancer proxy on 127.0.0.1, with real sockets.

A real embedded API server holds the Services, pods and Endpoints (written here by hand,
as the node agent and the Endpoints controller would write them); real asyncio TCP servers
on 127.0.0.1 stand in for the pods' published ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.node.service_proxy import ServiceProxy, _Listener
from reconciler.node.service_routes import (
    NodePortRoute,
    affinity_of,
    load_balancer_status_patch,
    plan_node_ports,
    published_ports,
)

JSONDict = dict[str, Any]


# -- stand-ins for pods ----------------------------------------------------------------------


class Backend:
    """Answers each line with `<name>:<line>` and keeps the connection open."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server: asyncio.Server | None = None
        self.port = 0
        self.accepted = 0

    async def start(self) -> Backend:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while line := await reader.readline():
                writer.write(f"{self.name}:{line.decode().strip()}\n".encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def ask(self, text: str) -> str:
        self.writer.write(f"{text}\n".encode())
        await self.writer.drain()
        line = await asyncio.wait_for(self.reader.readline(), 5)
        return line.decode().strip()

    def close(self) -> None:
        self.writer.close()


async def connect(port: int) -> Conn:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return Conn(reader, writer)


async def ask_once(port: int, text: str = "hi") -> str:
    conn = await connect(port)
    try:
        return await conn.ask(text)
    finally:
        conn.close()


def free_node_port() -> int:
    """A node port nothing on this host listens on now."""
    for _ in range(200):
        port = random.randint(30000, 32767)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 30000-32767")


# -- the harness -----------------------------------------------------------------------------


class Harness:
    def __init__(self, server: ApiServer, client: InProcessClient, proxy: ServiceProxy) -> None:
        self.server = server
        self.client = client
        self.proxy = proxy
        self.backends: list[Backend] = []

    async def eventually(
        self, check: Callable[[], Awaitable[Any]], timeout: float = 5.0, what: str = ""
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while loop.time() < deadline:
            last = await check()
            if last:
                return last
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")

    async def backend(self, name: str) -> Backend:
        started = await Backend(name).start()
        self.backends.append(started)
        return started

    async def pod(self, name: str, backend: Backend | None, container_port: int = 8080) -> JSONDict:
        annotations = {}
        if backend is not None:
            annotations["recon.dev/published-ports"] = json.dumps(
                {f"{container_port}/TCP": backend.port}
            )
        return await self.client.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "annotations": annotations},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "example/app:1",
                            "ports": [{"containerPort": container_port}],
                        }
                    ]
                },
            }
        )

    async def service(
        self, name: str, node_port: int, kind: str = "NodePort", **extra: Any
    ) -> JSONDict:
        return await self.client.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {
                    "type": kind,
                    "ports": [
                        {"name": "http", "port": 80, "targetPort": 8080, "nodePort": node_port}
                    ],
                    **extra,
                },
            }
        )

    async def endpoints(
        self,
        name: str,
        ready: list[JSONDict],
        not_ready: Sequence[JSONDict] = (),
    ) -> None:
        def address(pod: JSONDict) -> JSONDict:
            meta = pod["metadata"]
            return {
                "ip": "10.244.0.9",
                "targetRef": {
                    "kind": "Pod",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            }

        subset: JSONDict = {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
        if ready:
            subset["addresses"] = [address(p) for p in ready]
        if not_ready:
            subset["notReadyAddresses"] = [address(p) for p in not_ready]
        body: JSONDict = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "default"},
            "subsets": [subset] if ready or not_ready else [],
        }
        try:
            current = await self.client.get("v1", "Endpoints", name, "default")
        except Exception:
            await self.client.create(body)
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.client.update(body)

    async def routed(self, node_port: int, backends: int) -> bool:
        route = self.proxy.routes.get(node_port)
        return route is not None and len(route.backends) == backends


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    client = InProcessClient(server.service)
    proxy = ServiceProxy(client, "127.0.0.1", retry_interval=0.05)
    await proxy.start()
    h = Harness(server, client, proxy)
    try:
        yield h
    finally:
        await proxy.stop()
        for backend in h.backends:
            await backend.stop()
        await server.stop()


# -- behaviour -------------------------------------------------------------------------------


async def test_round_robin_across_two_ready_backends(harness: Harness) -> None:
    a, b = await harness.backend("a"), await harness.backend("b")
    pod_a, pod_b = await harness.pod("pa", a), await harness.pod("pb", b)
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [pod_a, pod_b])
    await harness.eventually(lambda: harness.routed(port, 2), what="two backends")
    answers = [await ask_once(port, str(i)) for i in range(6)]
    names = [answer.split(":")[0] for answer in answers]
    assert set(names[:2]) == {"a", "b"}
    assert names == [names[0], names[1]] * 3
    assert answers[0].endswith(":0")


async def test_client_ip_affinity_keeps_a_client_on_its_backend(harness: Harness) -> None:
    a, b = await harness.backend("a"), await harness.backend("b")
    pod_a, pod_b = await harness.pod("pa", a), await harness.pod("pb", b)
    port = free_node_port()
    await harness.service("web", port, sessionAffinity="ClientIP")
    await harness.endpoints("web", [pod_a, pod_b])
    await harness.eventually(lambda: harness.routed(port, 2), what="two backends")
    assert harness.proxy.routes[port].affinity_s == 10800.0
    names = {(await ask_once(port, str(i))).split(":")[0] for i in range(6)}
    assert len(names) == 1  # every connection from 127.0.0.1 to the same pod
    first = names.pop()
    # Its pod stops being ready: the client moves to the other one, and stays there.
    other = "b" if first == "a" else "a"
    await harness.endpoints("web", [pod_b if first == "a" else pod_a])
    await harness.eventually(lambda: harness.routed(port, 1), what="one backend left")
    assert (await ask_once(port)).split(":")[0] == other
    await harness.endpoints("web", [pod_a, pod_b])
    await harness.eventually(lambda: harness.routed(port, 2), what="both again")
    moved = {(await ask_once(port, str(i))).split(":")[0] for i in range(4)}
    assert moved == {other}


def test_affinity_lasts_its_timeout_after_the_last_connection() -> None:
    route = NodePortRoute(30080, "default", "web", "http", (1001, 1002), affinity_s=10.0)
    listener = _Listener(route)
    first = listener.backends_in_turn("10.0.0.1", 0.0)[0]
    listener.used("10.0.0.1", first, 0.0)
    for t in (5.0, 14.0, 23.0):  # each use renews it
        assert listener.backends_in_turn("10.0.0.1", t)[0] == first
        listener.used("10.0.0.1", first, t)
    later = [listener.backends_in_turn("10.0.0.1", 40.0)[0] for _ in range(2)]
    assert sorted(later) == [1001, 1002]  # expired: round-robin again
    other = [listener.backends_in_turn("10.0.0.2", 23.0)[0] for _ in range(2)]
    assert sorted(other) == [1001, 1002]  # affinity is per client address


def test_affinity_timeout_from_the_service() -> None:
    assert affinity_of({}) is None
    assert affinity_of({"sessionAffinity": "None"}) is None
    assert affinity_of({"sessionAffinity": "ClientIP"}) == 10800.0
    config = {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}
    assert affinity_of({"sessionAffinity": "ClientIP", **config}) == 60.0


async def test_only_ready_endpoints_are_used(harness: Harness) -> None:
    a, b = await harness.backend("a"), await harness.backend("b")
    pod_a, pod_b = await harness.pod("pa", a), await harness.pod("pb", b)
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [pod_a], not_ready=[pod_b])
    await harness.eventually(lambda: harness.routed(port, 1), what="one backend")
    assert {(await ask_once(port)).split(":")[0] for _ in range(4)} == {"a"}
    assert b.accepted == 0


async def test_endpoint_becoming_not_ready_moves_new_connections_only(harness: Harness) -> None:
    a, b = await harness.backend("a"), await harness.backend("b")
    pod_a, pod_b = await harness.pod("pa", a), await harness.pod("pb", b)
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [pod_a], not_ready=[pod_b])
    await harness.eventually(lambda: harness.routed(port, 1), what="a only")
    held = await connect(port)
    assert await held.ask("first") == "a:first"
    await harness.endpoints("web", [pod_b], not_ready=[pod_a])

    async def moved() -> bool:
        route = harness.proxy.routes.get(port)
        return route is not None and route.backends == (b.port,)

    await harness.eventually(moved, what="b only")
    assert {(await ask_once(port)).split(":")[0] for _ in range(3)} == {"b"}
    assert await held.ask("still") == "a:still"  # the established connection lives on
    held.close()


async def test_a_pod_without_published_ports_is_not_a_backend_until_it_has_them(
    harness: Harness,
) -> None:
    a = await harness.backend("a")
    pod = await harness.pod("pa", None)
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [pod])
    await harness.eventually(lambda: harness.routed(port, 0), what="a listener, no backend")
    await harness.client.patch(
        "v1",
        "Pod",
        "pa",
        {
            "metadata": {
                "annotations": {"recon.dev/published-ports": json.dumps({"8080/TCP": a.port})}
            }
        },
        namespace="default",
    )
    await harness.eventually(lambda: harness.routed(port, 1), what="the annotated pod")
    assert await ask_once(port) == "a:hi"


async def test_no_ready_endpoint_closes_the_connection(harness: Harness) -> None:
    b = await harness.backend("b")
    pod_b = await harness.pod("pb", b)
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [], not_ready=[pod_b])
    await harness.eventually(lambda: harness.routed(port, 0), what="a listener, no backend")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello\n")
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    try:
        data = await asyncio.wait_for(reader.read(100), 5)
    except ConnectionError:
        data = b""
    assert data == b""
    writer.close()
    assert b.accepted == 0


async def test_a_backend_that_refuses_is_skipped(harness: Harness) -> None:
    a, b = await harness.backend("a"), await harness.backend("b")
    pod_a, pod_b = await harness.pod("pa", a), await harness.pod("pb", b)
    await a.stop()  # published, ready, but nothing listens any more
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [pod_a, pod_b])
    await harness.eventually(lambda: harness.routed(port, 2), what="two backends")
    assert [(await ask_once(port)).split(":")[0] for _ in range(4)] == ["b"] * 4


async def test_a_terminating_pod_gets_no_new_connection_before_its_endpoints_change(
    harness: Harness,
) -> None:
    a, b = await harness.backend("a"), await harness.backend("b")
    pod_a, pod_b = await harness.pod("pa", a), await harness.pod("pb", b)
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [pod_a, pod_b])
    await harness.eventually(lambda: harness.routed(port, 2), what="two backends")
    held = await connect(port)
    first = await held.ask("first")
    # `pb` starts terminating (a finalizer keeps it visible); the Endpoints, written by a
    # controller that has not caught up, still list it as ready.
    await harness.client.patch(
        "v1", "Pod", "pb", {"metadata": {"finalizers": ["test/hold"]}}, namespace="default"
    )
    await harness.client.delete("v1", "Pod", "pb", "default")

    async def only_a() -> bool:
        route = harness.proxy.routes.get(port)
        return route is not None and route.backends == (a.port,)

    await harness.eventually(only_a, what="the terminating pod out of the route")
    accepted = b.accepted
    assert {(await ask_once(port)).split(":")[0] for _ in range(4)} == {"a"}
    assert b.accepted == accepted
    assert (await held.ask("still")).split(":")[0] == first.split(":")[0]
    held.close()
    await harness.client.patch(
        "v1", "Pod", "pb", {"metadata": {"finalizers": None}}, namespace="default"
    )


async def test_a_pod_turning_unready_gets_no_new_connection_before_its_endpoints_change(
    harness: Harness,
) -> None:
    a, b = await harness.backend("a"), await harness.backend("b")
    pod_a, pod_b = await harness.pod("pa", a), await harness.pod("pb", b)
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [pod_a, pod_b])
    await harness.eventually(lambda: harness.routed(port, 2), what="two backends")
    await harness.client.patch(
        "v1",
        "Pod",
        "pb",
        {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        namespace="default",
        subresource="status",
    )
    await harness.eventually(lambda: harness.routed(port, 1), what="the unready pod out")
    assert harness.proxy.routes[port].backends == (a.port,)
    await harness.client.patch(
        "v1",
        "Pod",
        "pb",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        namespace="default",
        subresource="status",
    )
    await harness.eventually(lambda: harness.routed(port, 2), what="the pod back")


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


async def test_listener_closes_when_the_service_is_deleted(harness: Harness) -> None:
    a = await harness.backend("a")
    pod_a = await harness.pod("pa", a)
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [pod_a])
    await harness.eventually(lambda: harness.routed(port, 1), what="listening")
    assert await ask_once(port) == "a:hi"
    await harness.client.delete("v1", "Service", "web", "default")
    await harness.eventually(lambda: refused(port), what="the port to close")
    assert port not in harness.proxy.routes


async def test_listener_closes_when_the_type_changes(harness: Harness) -> None:
    a = await harness.backend("a")
    pod_a = await harness.pod("pa", a)
    port = free_node_port()
    await harness.service("web", port)
    await harness.endpoints("web", [pod_a])
    await harness.eventually(lambda: harness.routed(port, 1), what="listening")
    await harness.client.patch(
        "v1", "Service", "web", {"spec": {"type": "ClusterIP"}}, namespace="default"
    )
    await harness.eventually(lambda: refused(port), what="the port to close")


async def test_load_balancer_gets_an_ingress_ip_and_loses_it(harness: Harness) -> None:
    a = await harness.backend("a")
    pod_a = await harness.pod("pa", a)
    port = free_node_port()
    await harness.service("lb", port, kind="LoadBalancer")
    await harness.endpoints("lb", [pod_a])

    async def ingress() -> Any:
        svc = await harness.client.get("v1", "Service", "lb", "default")
        return ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")

    assert await harness.eventually(ingress, what="ingress") == [{"ip": "127.0.0.1"}]
    await harness.eventually(lambda: harness.routed(port, 1), what="listening")
    assert await ask_once(port) == "a:hi"
    await harness.client.patch(
        "v1", "Service", "lb", {"spec": {"type": "NodePort"}}, namespace="default"
    )

    async def cleared() -> bool:
        return not await ingress()

    await harness.eventually(cleared, what="ingress removed")
    assert await ask_once(port) == "a:hi"  # still a NodePort Service


async def test_a_busy_node_port_is_reported_and_retried(harness: Harness) -> None:
    a = await harness.backend("a")
    pod_a = await harness.pod("pa", a)
    port = free_node_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    try:
        await harness.service("web", port)
        await harness.endpoints("web", [pod_a])

        async def warned() -> bool:
            events = await harness.client.list("v1", "Event", "default")
            return any(e.get("reason") == "FailedBindNodePort" for e in events.items)

        await harness.eventually(warned, what="a Warning Event")
        event = next(
            e
            for e in (await harness.client.list("v1", "Event", "default")).items
            if e.get("reason") == "FailedBindNodePort"
        )
        assert event["type"] == "Warning"
        assert event["involvedObject"]["name"] == "web"
        assert str(port) in event["message"]
        assert port not in harness.proxy.routes
    finally:
        blocker.close()
    await harness.eventually(lambda: harness.routed(port, 1), what="bound after the retry")
    assert await ask_once(port) == "a:hi"


# -- the routing table, pure -------------------------------------------------------------------


def test_plan_matches_ports_by_name_and_reads_published_ports() -> None:
    services: list[JSONDict] = [
        {
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {
                "type": "NodePort",
                "ports": [
                    {"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"},
                    {"name": "metrics", "port": 9090, "nodePort": 30090, "protocol": "TCP"},
                    {"name": "dns", "port": 53, "nodePort": 30053, "protocol": "UDP"},
                ],
            },
        },
        {"metadata": {"name": "plain", "namespace": "ns"}, "spec": {"type": "ClusterIP"}},
    ]
    endpoints = {
        ("ns", "web"): {
            "subsets": [
                {
                    "addresses": [
                        {"ip": "x", "targetRef": {"kind": "Pod", "name": "p1", "uid": "u1"}},
                        {"ip": "y", "targetRef": {"kind": "Pod", "name": "p2", "uid": "stale"}},
                    ],
                    "notReadyAddresses": [{"ip": "z", "targetRef": {"kind": "Pod", "name": "p3"}}],
                    "ports": [
                        {"name": "http", "port": 8080, "protocol": "TCP"},
                        {"name": "metrics", "port": 9100, "protocol": "TCP"},
                    ],
                }
            ]
        }
    }

    def pod(name: str, uid: str, ports: JSONDict) -> JSONDict:
        return {
            "metadata": {
                "name": name,
                "uid": uid,
                "annotations": {"recon.dev/published-ports": json.dumps(ports)},
            }
        }

    pods = {
        ("ns", "p1"): pod("p1", "u1", {"8080/TCP": 41000, "9100/TCP": 41001}),
        ("ns", "p2"): pod("p2", "u2", {"8080/TCP": 42000}),
        ("ns", "p3"): pod("p3", "u3", {"8080/TCP": 43000}),
    }
    routes = plan_node_ports(
        services, lambda ns, n: endpoints.get((ns, n)), lambda ns, n: pods.get((ns, n))
    )
    assert sorted(routes) == [30080, 30090]  # UDP is not served
    assert routes[30080].backends == (41000,)  # p2's uid is stale, p3 is not ready
    assert routes[30090].backends == (41001,)
    assert routes[30080].service == "web" and routes[30080].port_name == "http"


def test_plan_leaves_out_pods_that_say_they_must_not_serve() -> None:
    """The Endpoints list all four as ready; the pods themselves know better."""
    services: list[JSONDict] = [
        {
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"type": "NodePort", "ports": [{"name": "", "port": 80, "nodePort": 30080}]},
        }
    ]
    names = ["ready", "terminating", "unready", "finished", "no-conditions"]
    endpoints = {
        "subsets": [
            {
                "addresses": [{"ip": "x", "targetRef": {"kind": "Pod", "name": n}} for n in names],
                "ports": [{"port": 8080, "protocol": "TCP"}],
            }
        ]
    }

    def pod(i: int, meta: JSONDict, status: JSONDict) -> JSONDict:
        annotations = {"recon.dev/published-ports": json.dumps({"8080/TCP": 41000 + i})}
        return {
            "metadata": {"name": names[i], "annotations": annotations, **meta},
            "status": status,
        }

    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    pods = {
        "ready": pod(0, {}, ready),
        "terminating": pod(1, {"deletionTimestamp": "2024-01-01T00:00:00Z"}, ready),
        "unready": pod(
            2, {}, {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}
        ),
        "finished": pod(3, {}, {**ready, "phase": "Succeeded"}),
        "no-conditions": pod(4, {}, {}),
    }
    routes = plan_node_ports(services, lambda ns, n: endpoints, lambda ns, n: pods.get(n))
    assert routes[30080].backends == (41000, 41004)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"80/TCP": 41234}', {"80/TCP": 41234}),
        ("not json", {}),
        ("[1, 2]", {}),
        ('{"80/TCP": "x"}', {}),
    ],
)
def test_published_ports_tolerates_bad_annotations(text: str, expected: JSONDict) -> None:
    pod = {"metadata": {"annotations": {"recon.dev/published-ports": text}}}
    assert published_ports(pod) == expected


def test_load_balancer_status_patch() -> None:
    lb: JSONDict = {"spec": {"type": "LoadBalancer"}}
    assert load_balancer_status_patch(lb, "127.0.0.1") == {
        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    }
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    assert load_balancer_status_patch(lb, "127.0.0.1") is None
    was_lb = {"spec": {"type": "NodePort"}, "status": lb["status"]}
    assert load_balancer_status_patch(was_lb, "127.0.0.1") == {
        "status": {"loadBalancer": {"ingress": None}}
    }
    foreign = {
        "spec": {"type": "ClusterIP"},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
    }
    assert load_balancer_status_patch(foreign, "127.0.0.1") is None


# -- UDP node ports ----------------------------------------------------------------------------


class UdpBackend(asyncio.DatagramProtocol):
    """A pod's published UDP port: answers `<name>:<datagram>`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = int(transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        self.transport.sendto(f"{self.name}:".encode() + data, addr)


async def udp_backend(name: str) -> UdpBackend:
    loop = asyncio.get_running_loop()
    _, backend = await loop.create_datagram_endpoint(
        lambda: UdpBackend(name), local_addr=("127.0.0.1", 0)
    )
    return backend


async def ask_udp(port: int, text: str = "hi", timeout: float = 2.0) -> str | None:
    """One datagram from a fresh socket (a new session) to 127.0.0.1:`port`."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_sendto(sock, text.encode(), ("127.0.0.1", port))
        try:
            data, peer = await asyncio.wait_for(loop.sock_recvfrom(sock, 512), timeout)
        except TimeoutError:
            return None
        assert peer == ("127.0.0.1", port)  # the answer comes from the node port
        return bytes(data).decode()


async def _udp_pod(harness: Harness, name: str, backend: UdpBackend) -> JSONDict:
    return await harness.client.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "default",
                "annotations": {
                    "recon.dev/published-ports": json.dumps({"5353/UDP": backend.port})
                },
            },
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "example/dns:1",
                        "ports": [{"containerPort": 5353, "protocol": "UDP"}],
                    }
                ]
            },
        }
    )


async def _udp_endpoints(harness: Harness, pods: list[JSONDict]) -> None:
    subset: JSONDict = {
        "addresses": [
            {"ip": "10.244.0.9", "targetRef": {"kind": "Pod", "name": p["metadata"]["name"]}}
            for p in pods
        ],
        "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
    }
    body: JSONDict = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "dns", "namespace": "default"},
        "subsets": [subset] if pods else [],
    }
    try:
        current = await harness.client.get("v1", "Endpoints", "dns", "default")
    except Exception:
        await harness.client.create(body)
    else:
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await harness.client.update(body)


async def test_a_udp_node_port_relays_sessions_to_ready_endpoints(harness: Harness) -> None:
    a, b = await udp_backend("a"), await udp_backend("b")
    pod_a, pod_b = await _udp_pod(harness, "pa", a), await _udp_pod(harness, "pb", b)
    port = free_node_port()
    await harness.client.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "dns", "namespace": "default"},
            "spec": {
                "type": "NodePort",
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": port},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": port},
                ],
            },
        }
    )

    async def udp_routed(count: int) -> bool:
        route = harness.proxy.udp_routes.get(port)
        return route is not None and len(route.backends) == count

    await harness.eventually(lambda: udp_routed(0), what="a UDP listener, no backend")
    assert port in harness.proxy.routes  # TCP on the same number, as Kubernetes allows
    assert await ask_udp(port, timeout=0.2) is None  # no ready endpoint: no answer

    await _udp_endpoints(harness, [pod_a, pod_b])
    await harness.eventually(lambda: udp_routed(2), what="two UDP backends")
    names = [(await ask_udp(port, str(i)) or "none").split(":")[0] for i in range(4)]
    assert set(names[:2]) == {"a", "b"} and names == names[:2] * 2  # round-robin

    # One client keeps its session (and its backend) for every datagram it sends.
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        answers = set()
        for i in range(4):
            await loop.sock_sendto(sock, f"{i}".encode(), ("127.0.0.1", port))
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 512), 2)
            answers.add(bytes(data).decode().split(":")[0])
        assert len(answers) == 1
        kept = answers.pop()
        # Its pod stops being an endpoint: the session ends, the client moves on.
        await _udp_endpoints(harness, [pod_b if kept == "a" else pod_a])
        await harness.eventually(lambda: udp_routed(1), what="one UDP backend")
        await loop.sock_sendto(sock, b"moved", ("127.0.0.1", port))
        data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 512), 2)
        assert bytes(data).decode() == ("b" if kept == "a" else "a") + ":moved"

    # The Service goes: so does the UDP node port.
    await harness.client.delete("v1", "Service", "dns", "default")

    async def closed() -> bool:
        return port not in harness.proxy.udp_routes

    await harness.eventually(closed, what="the UDP node port closed")
    assert await ask_udp(port, timeout=0.2) is None
    for backend in (a, b):
        assert backend.transport is not None
        backend.transport.close()


async def test_a_busy_udp_node_port_is_reported(harness: Harness) -> None:
    port = free_node_port()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", port))
    try:
        await harness.client.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "dns", "namespace": "default"},
                "spec": {
                    "type": "NodePort",
                    "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": port}],
                },
            }
        )

        async def warned() -> list[JSONDict]:
            events = await harness.client.list("v1", "Event", "default")
            return [e for e in events.items if e.get("reason") == "FailedBindNodePort"]

        [event] = await harness.eventually(warned, what="a Warning Event")
        assert f"127.0.0.1:{port}/UDP" in event["message"]
    finally:
        blocker.close()
    await harness.eventually(
        lambda: asyncio.sleep(0, port in harness.proxy.udp_routes), what="bound after the retry"
    )


def test_plan_routes_udp_ports_to_published_udp_ports() -> None:
    services: list[JSONDict] = [
        {
            "metadata": {"name": "dns", "namespace": "ns"},
            "spec": {
                "type": "LoadBalancer",
                "ports": [
                    {"name": "dns", "port": 53, "nodePort": 30053, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "nodePort": 30053, "protocol": "TCP"},
                ],
            },
        }
    ]
    endpoints = {
        "subsets": [
            {
                "addresses": [{"ip": "x", "targetRef": {"kind": "Pod", "name": "p1"}}],
                "ports": [
                    {"name": "dns", "port": 5353, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 5353, "protocol": "TCP"},
                ],
            }
        ]
    }
    pod = {
        "metadata": {
            "name": "p1",
            "annotations": {
                "recon.dev/published-ports": json.dumps({"5353/TCP": 41000, "5353/UDP": 41001})
            },
        }
    }
    tcp = plan_node_ports(services, lambda ns, n: endpoints, lambda ns, n: pod)
    udp = plan_node_ports(services, lambda ns, n: endpoints, lambda ns, n: pod, "UDP")
    assert tcp[30053].backends == (41000,) and tcp[30053].protocol == "TCP"
    assert udp[30053].backends == (41001,) and udp[30053].protocol == "UDP"
    assert udp[30053].port_name == "dns"
