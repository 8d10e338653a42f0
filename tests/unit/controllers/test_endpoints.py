"""Endpoints: ready and not-ready pods per Service, named ports, and the EndpointSlice."""

from __future__ import annotations

from typing import Any

from reconciler.controllers.endpoints import EndpointsController, plan_endpoints, plan_slice


def service(ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid"},
        "spec": {
            "selector": {"app": "web"},
            "ports": ports
            or [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def pod(
    name: str,
    ip: str | None,
    ready: bool = True,
    port_name: str = "http",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"{name}-uid",
            "labels": labels or {"app": "web"},
        },
        "spec": {
            "nodeName": "node",
            "containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": 8080}]}],
        },
        "status": {
            "podIP": ip,
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_ready_and_not_ready_addresses_with_named_ports() -> None:
    subsets = plan_endpoints(
        service(),
        [
            pod("a", "10.0.0.1"),
            pod("b", "10.0.0.2", ready=False),
            pod("c", None),
            pod("other", "10.0.0.9", labels={"app": "db"}),
        ],
    )["subsets"]
    assert subsets == [
        {
            "addresses": [
                {
                    "ip": "10.0.0.1",
                    "nodeName": "node",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": "default",
                        "name": "a",
                        "uid": "a-uid",
                    },
                }
            ],
            "notReadyAddresses": [
                {
                    "ip": "10.0.0.2",
                    "nodeName": "node",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": "default",
                        "name": "b",
                        "uid": "b-uid",
                    },
                }
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    ]


def test_pods_naming_ports_differently_land_in_different_subsets() -> None:
    subsets = plan_endpoints(service([{"port": 80, "targetPort": 9000}]), [pod("a", "10.0.0.1")])[
        "subsets"
    ]
    assert subsets[0]["ports"] == [{"port": 9000, "protocol": "TCP"}]
    mixed = plan_endpoints(
        service(), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", port_name="web")]
    )["subsets"]
    assert len(mixed) == 2 and mixed[1]["ports"] == []


def test_slice_mirrors_the_endpoints() -> None:
    subsets = plan_endpoints(service(), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", False)])
    slice_obj = plan_slice(service(), subsets["subsets"])
    assert slice_obj["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert [(e["addresses"], e["conditions"]["ready"]) for e in slice_obj["endpoints"]] == [
        (["10.0.0.1"], True),
        (["10.0.0.2"], False),
    ]
    assert slice_obj["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"


async def test_endpoints_follow_pod_readiness_on_the_embedded_server(plane: Any) -> None:
    p = await plane(EndpointsController)
    svc = service()
    del svc["metadata"]["uid"]
    await p.client.create(svc)
    created = pod("a", None)
    del created["metadata"]["uid"], created["status"]
    created["apiVersion"], created["kind"] = "v1", "Pod"
    created["spec"]["containers"][0]["image"] = "x"
    await p.client.create(created)
    await p.client.patch(
        "v1",
        "Pod",
        "a",
        {
            "status": {
                "podIP": "10.1.0.5",
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
        namespace="default",
        subresource="status",
    )

    async def ready_ips() -> list[str]:
        try:
            ep = await p.client.get("v1", "Endpoints", "web", "default")
        except Exception:
            return []
        return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]

    assert await p.eventually(ready_ips, what="the pod in the Endpoints") == ["10.1.0.5"]
    await p.client.patch(
        "v1",
        "Pod",
        "a",
        {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        namespace="default",
        subresource="status",
    )

    async def not_ready() -> bool:
        return await ready_ips() == []

    await p.eventually(not_ready, what="the pod to leave the ready addresses")
    slices = await p.client.list("discovery.k8s.io/v1", "EndpointSlice", "default")
    assert slices.items[0]["endpoints"][0]["conditions"]["ready"] is False
