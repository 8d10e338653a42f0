"""gRPC probes against a real gRPC health server (grpcio's own `grpc.health.v1` servicer):
SERVING passes; NOT_SERVING, an unknown service and nothing listening fail in the
kubelet's words."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import grpc  # type: ignore[import-untyped]
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from reconciler.node import grpc_probe


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, health.aio.HealthServicer]]:
    servicer = health.aio.HealthServicer()
    srv = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("shop.Cart", health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        yield port, servicer
    finally:
        await srv.stop(None)


async def test_serving_and_not(server: tuple[int, health.aio.HealthServicer]) -> None:
    port, servicer = server
    assert await grpc_probe.check("127.0.0.1", port, "", 2) == (True, "")
    assert await grpc_probe.check("127.0.0.1", port, "shop.Cart", 2) == (
        False,
        'service unhealthy (responded with "NOT_SERVING")',
    )
    await servicer.set("shop.Cart", health_pb2.HealthCheckResponse.SERVING)
    assert (await grpc_probe.check("127.0.0.1", port, "shop.Cart", 2))[0]
    ok, message = await grpc_probe.check("127.0.0.1", port, "no.Such", 2)
    assert not ok and message.startswith("error: health rpc probe failed")


async def test_nothing_listening() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, message = await grpc_probe.check("127.0.0.1", port, "", 1)
    assert not ok
    assert message.startswith(f'timeout: failed to connect service "127.0.0.1:{port}" within 1s')


def test_the_request_and_the_answer_bytes() -> None:
    request = grpc_probe.health_request("127.0.0.1:9000", "shop.Cart")
    assert request.startswith(grpc_probe.PREFACE)
    assert request.endswith(b"\x00\x00\x00\x00\x0b\x0a\x09shop.Cart")
    assert grpc_probe.parse_status(b"\x00\x00\x00\x00\x02\x08\x01") == 1
    assert grpc_probe.parse_status(b"\x00\x00\x00\x00\x00") == 0  # status absent: UNKNOWN
    assert grpc_probe.parse_status(b"") is None
