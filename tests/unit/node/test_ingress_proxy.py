"""The ingress proxy with real sockets: a real embedded API server holds the Ingresses,
Services, Endpoints and pods (written by hand, as the controllers and the node agent would
write them); aiohttp servers on 127.0.0.1 stand in for the pods' published ports."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from cryptography.x509.oid import NameOID

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.node.ingress_proxy import IngressProxy
from reconciler.node.ingress_tls import FAKE_NAME, self_signed

JSONDict = dict[str, Any]
NETWORKING = "networking.k8s.io/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Pod:
    """An HTTP server answering what it saw: its name, the method, path, Host and
    forwarding headers, and the body; `/ws` echoes WebSocket messages."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> Pod:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {
            "pod": self.name,
            "method": request.method,
            "path": request.path_qs,
            "host": request.headers.get("Host"),
            "xff": request.headers.get("X-Forwarded-For"),
            "proto": request.headers.get("X-Forwarded-Proto"),
            "xhost": request.headers.get("X-Forwarded-Host"),
            "body": body.decode(),
        }
        response = web.json_response(seen, status=201 if request.method == "POST" else 200)
        response.headers["X-Pod"] = self.name
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(f"{self.name}:{message.data}")
        return ws

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def served_certificate_name(port: int, server_name: str) -> str:
    """The common name of the certificate the listener presents for `server_name`."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=server_name
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


class Harness:
    def __init__(self, client: InProcessClient, proxy: IngressProxy) -> None:
        self.client = client
        self.proxy = proxy
        self.pods: list[Pod] = []
        self.http = f"http://127.0.0.1:{proxy.ports['http']}"
        self.https = f"https://127.0.0.1:{proxy.ports['https']}"

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
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")

    async def backend(self, service: str, *pod_names: str) -> list[Pod]:
        """A Service `service` (port 80 `http` -> 8080) with one ready pod per name."""
        pods = [await Pod(n).start() for n in pod_names]
        self.pods += pods
        made = []
        for p in pods:
            made.append(
                await self.client.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": p.name,
                            "namespace": "default",
                            "annotations": {
                                "recon.dev/published-ports": json.dumps({"8080/TCP": p.port})
                            },
                        },
                        "spec": {"containers": [{"name": "c", "image": "example/app:1"}]},
                    }
                )
            )
        await self.client.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": service, "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            }
        )
        addresses = [
            {
                "ip": "10.0.0.1",
                "targetRef": {
                    "kind": "Pod",
                    "name": m["metadata"]["name"],
                    "uid": m["metadata"]["uid"],
                },
            }
            for m in made
        ]
        subsets = [{"addresses": addresses, "ports": [{"name": "http", "port": 8080}]}]
        await self.client.create(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": service, "namespace": "default"},
                "subsets": subsets if made else [],
            }
        )
        return pods

    async def ingress(self, name: str, rules: list[JSONDict], **spec: Any) -> JSONDict:
        annotations = spec.pop("annotations", {})
        return await self.client.create(
            {
                "apiVersion": NETWORKING,
                "kind": "Ingress",
                "metadata": {"name": name, "namespace": "default", "annotations": annotations},
                "spec": {"rules": rules, **spec},
            }
        )

    async def routes(self, host: str, path: str, service: str) -> bool:
        found = self.proxy.table.match(host, path)
        return (
            found is not None
            and found.route.backend.service == service
            and bool(found.route.backend.backends)
            and "http" in self.proxy.listening
        )


def rule(host: str | None, path: str, service: str) -> JSONDict:
    value: JSONDict = {
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": "Prefix",
                    "backend": {"service": {"name": service, "port": {"number": 80}}},
                }
            ]
        }
    }
    if host:
        value["host"] = host
    return value


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    client = InProcessClient(server.service)
    proxy = IngressProxy(
        client, "127.0.0.1", free_port(), free_port(), retry_interval=0.05, read_timeout=2
    )
    await proxy.start()
    h = Harness(client, proxy)
    try:
        yield h
    finally:
        await proxy.stop()
        for p in h.pods:
            await p.stop()
        await server.stop()


async def test_routes_by_host_and_path_with_forwarding_headers(harness: Harness) -> None:
    await harness.backend("web", "web-1")
    await harness.backend("api", "api-1")
    assert harness.proxy.listening == {}  # nothing to serve yet: nothing bound
    await harness.ingress("site", [rule("shop.test", "/", "web"), rule("shop.test", "/api", "api")])
    await harness.eventually(lambda: harness.routes("shop.test", "/api", "api"), what="routes")
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{harness.http}/api/items?x=1", headers={"Host": "shop.test"}
        ) as response:
            seen = await response.json()
            assert response.status == 200
            assert response.headers["X-Pod"] == "api-1"
            assert len(response.headers.getall("Set-Cookie")) == 2
        assert seen["path"] == "/api/items?x=1"
        assert seen["host"] == "shop.test"
        assert seen["xff"] == "127.0.0.1"
        assert seen["proto"] == "http"
        assert seen["xhost"] == "shop.test"
        async with session.post(
            f"{harness.http}/cart", headers={"Host": "shop.test"}, data=b"x" * 100_000
        ) as response:
            assert response.status == 201
            seen = await response.json()
        assert seen["pod"] == "web-1" and len(seen["body"]) == 100_000
        async with session.get(f"{harness.http}/", headers={"Host": "other.test"}) as response:
            assert response.status == 404
            assert "default backend - 404" in await response.text()


async def test_round_robin_and_503_naming_the_reason(harness: Harness) -> None:
    await harness.backend("web", "web-1", "web-2")
    await harness.backend("empty")
    await harness.ingress("site", [rule(None, "/", "web"), rule(None, "/empty", "empty")])
    await harness.eventually(lambda: harness.routes("any", "/", "web"), what="routes")
    pods = []
    async with aiohttp.ClientSession() as session:
        for _ in range(4):
            async with session.get(f"{harness.http}/") as response:
                pods.append((await response.json())["pod"])
        async with session.get(f"{harness.http}/empty") as response:
            assert response.status == 503
            assert 'no ready endpoints for service "default/empty"' in await response.text()
    assert sorted(pods) == ["web-1", "web-1", "web-2", "web-2"]
    assert pods[0] != pods[1]


async def test_status_shows_the_address_and_listeners_close_when_no_ingress_is_left(
    harness: Harness,
) -> None:
    await harness.backend("web", "web-1")
    await harness.ingress("site", [rule(None, "/", "web")])

    async def address() -> Any:
        got = await harness.client.get(NETWORKING, "Ingress", "site", "default")
        return ((got.get("status") or {}).get("loadBalancer") or {}).get("ingress")

    assert await harness.eventually(address, what="status") == [{"ip": "127.0.0.1"}]
    assert set(harness.proxy.listening) == {"http", "https"}
    await harness.client.delete(NETWORKING, "Ingress", "site", "default")

    async def closed() -> bool:
        return harness.proxy.listening == {}

    await harness.eventually(closed, what="listeners closed")
    with pytest.raises(aiohttp.ClientConnectorError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"{harness.http}/")


async def test_https_by_sni_redirects_http_and_falls_back_on_a_bad_secret(
    harness: Harness,
) -> None:
    await harness.backend("web", "web-1")
    cert, key = self_signed("secure.test", ["secure.test"])
    await harness.client.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "secure-tls", "namespace": "default"},
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": base64.b64encode(cert).decode(),
                "tls.key": base64.b64encode(key).decode(),
            },
        }
    )
    await harness.ingress(
        "secure",
        [rule("secure.test", "/", "web"), rule("broken.test", "/", "web")],
        tls=[
            {"hosts": ["secure.test"], "secretName": "secure-tls"},
            {"hosts": ["broken.test"], "secretName": "missing"},
        ],
    )
    await harness.eventually(lambda: harness.routes("secure.test", "/", "web"), what="routes")
    port = harness.proxy.ports["https"]
    assert await served_certificate_name(port, "secure.test") == "secure.test"
    assert await served_certificate_name(port, "broken.test") == FAKE_NAME
    assert await served_certificate_name(port, "unknown.test") == FAKE_NAME
    context = ssl.create_default_context(cadata=cert.decode())
    connector = aiohttp.TCPConnector(
        resolver=_Resolve("secure.test"), ssl=context, force_close=True
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"https://secure.test:{port}/x") as response:
            seen = await response.json()
        assert seen["proto"] == "https" and seen["path"] == "/x"
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{harness.http}/x?y=1", headers={"Host": "secure.test"}, allow_redirects=False
        ) as response,
    ):
        assert response.status == 308
        assert response.headers["Location"] == f"https://secure.test:{port}/x?y=1"

    async def warned() -> bool:
        events = await harness.client.list("v1", "Event", namespace="default")
        return any(
            e.get("reason") == "BadCertificate"
            and 'secret "default/missing" not found' in e.get("message", "")
            for e in events.items
        )

    await harness.eventually(warned, what="a BadCertificate event")


class _Resolve(AbstractResolver):
    """Resolves one name to 127.0.0.1, so TLS verification sees the real host name."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        assert host == self.name
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


async def test_rewrite_target_and_websocket(harness: Harness) -> None:
    await harness.backend("web", "web-1")
    await harness.ingress(
        "rw",
        [
            {
                "http": {
                    "paths": [
                        {
                            "path": "/app(/|$)(.*)",
                            "pathType": "ImplementationSpecific",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                        }
                    ]
                }
            }
        ],
        annotations={"nginx.ingress.kubernetes.io/rewrite-target": "/$2"},
    )
    await harness.eventually(lambda: harness.routes("h", "/app/x", "web"), what="routes")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{harness.http}/app/users/7?q=1") as response:
            assert (await response.json())["path"] == "/users/7?q=1"
        async with session.ws_connect(f"{harness.http}/app/ws") as ws:
            await ws.send_str("hello")
            message = await asyncio.wait_for(ws.receive(), 5)
            assert message.data == "web-1:hello"


async def test_an_unreachable_backend_is_a_502(harness: Harness) -> None:
    (pod,) = await harness.backend("web", "web-1")
    await harness.ingress("site", [rule(None, "/", "web")])
    await harness.eventually(lambda: harness.routes("h", "/", "web"), what="routes")
    await pod.stop()
    async with aiohttp.ClientSession() as session, session.get(f"{harness.http}/") as response:
        assert response.status == 502
