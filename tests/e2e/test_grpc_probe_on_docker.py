"""A gRPC readiness probe with the real kubectl on Docker. The pod runs on the host's
network, so its probe reaches a real gRPC health server (grpcio's) that this test runs on
127.0.0.1: SERVING makes the pod Ready, NOT_SERVING takes Ready away and says why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc  # type: ignore[import-untyped]
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from tests.e2e.conftest import ReconServer, new_namespace
from tests.e2e.support import busybox_pod, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    servicer = health.HealthServicer()
    server = grpc.server(ThreadPoolExecutor(2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set("shop.Cart", health_pb2.HealthCheckResponse.SERVING)
    try:
        yield port, servicer
    finally:
        server.stop(None)


def test_grpc_readiness_follows_the_health_service(
    docker_server: ReconServer, health_server: tuple[int, health.HealthServicer]
) -> None:
    port, servicer = health_server
    kubectl, ns = new_namespace(docker_server, "grpc")
    probe = {"grpc": {"port": port, "service": "shop.Cart"}, "periodSeconds": 1}
    container = {
        "ports": [{"containerPort": port}],
        "readinessProbe": {**probe, "failureThreshold": 1},
    }
    pod = busybox_pod(ns, "cart", ["sleep", "3600"], container, hostNetwork=True)
    kubectl.run("apply", "-f", "-", input=json.dumps(pod))
    kubectl.run("-n", ns, "wait", "--for=condition=Ready", "pod/cart", "--timeout=60s", timeout=70)

    servicer.set("shop.Cart", health_pb2.HealthCheckResponse.NOT_SERVING)

    def ready() -> str:
        conditions = kubectl.json("-n", ns, "get", "pod", "cart")["status"]["conditions"]
        return str(next(c["status"] for c in conditions if c["type"] == "Ready"))

    wait_until(lambda: ready() == "False", what="Ready taken away")
    events = kubectl.json("-n", ns, "get", "events")["items"]
    assert any(
        e.get("message")
        == 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")'
        for e in events
    ), [e.get("message") for e in events]
    servicer.set("shop.Cart", health_pb2.HealthCheckResponse.SERVING)
    wait_until(lambda: ready() == "True", what="Ready again")
