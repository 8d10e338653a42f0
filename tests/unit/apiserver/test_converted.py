"""autoscaling/v1 HorizontalPodAutoscalers, served by conversion to the stored v2: the
conversion itself (nothing lost on a round trip), and CRUD and patches over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.apiserver.hpa_conversion import hpa_v1_to_v2, hpa_v2_to_v1
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient

JSONDict = dict[str, Any]

V2: JSONDict = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 5,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 60},
                },
            },
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "100Mi"},
                },
            },
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
    },
    "status": {
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "currentMetrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": 90}},
            },
            {
                "type": "Resource",
                "resource": {"name": "memory", "current": {"averageValue": "50Mi"}},
            },
        ],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}],
    },
}


def test_v2_to_v1_and_back_loses_nothing() -> None:
    v1 = hpa_v2_to_v1(V2)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 60
    assert "metrics" not in v1["spec"] and "behavior" not in v1["spec"]
    assert v1["status"]["currentCPUUtilizationPercentage"] == 90
    assert set(v1["metadata"]["annotations"]) == {
        "autoscaling.alpha.kubernetes.io/metrics",
        "autoscaling.alpha.kubernetes.io/behavior",
        "autoscaling.alpha.kubernetes.io/current-metrics",
        "autoscaling.alpha.kubernetes.io/conditions",
    }
    assert hpa_v1_to_v2(v1) == V2


def test_a_plain_v1_object_converts_to_one_cpu_metric() -> None:
    v1 = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 50,
        },
    }
    v2 = hpa_v1_to_v2(v1)
    assert v2["spec"] == {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "maxReplicas": 3,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50},
                },
            }
        ],
    }
    assert "annotations" not in v2["metadata"]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[InProcessClient, aiohttp.ClientSession]]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    assert server.credentials is not None
    async with aiohttp.ClientSession(
        base_url=f"https://127.0.0.1:{server.port}",
        headers={"Authorization": f"Bearer {server.credentials.token}"},
        connector=aiohttp.TCPConnector(ssl=False),
    ) as http:
        yield InProcessClient(server.service), http
    await server.stop()


V1_PATH = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"


async def test_v1_crud_over_http_is_stored_as_v2(
    api: tuple[InProcessClient, aiohttp.ClientSession],
) -> None:
    client, http = api
    async with http.get("/apis/autoscaling") as response:
        group = await response.json()
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    assert group["preferredVersion"]["version"] == "v2"
    body = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 4,
            "targetCPUUtilizationPercentage": 50,
        },
    }
    async with http.post(V1_PATH, json=body) as response:
        assert response.status == 201, await response.text()
        created = await response.json()
    assert created["apiVersion"] == "autoscaling/v1"
    assert created["spec"]["targetCPUUtilizationPercentage"] == 50
    stored = await client.get("autoscaling/v2", "HorizontalPodAutoscaler", "web", "default")
    assert stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50

    patch = {"spec": {"targetCPUUtilizationPercentage": 70, "maxReplicas": 6}}
    async with http.patch(
        f"{V1_PATH}/web",
        json=patch,
        headers={"Content-Type": "application/merge-patch+json"},
    ) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["spec"]["targetCPUUtilizationPercentage"] == 70
    stored = await client.get("autoscaling/v2", "HorizontalPodAutoscaler", "web", "default")
    assert stored["spec"]["maxReplicas"] == 6
    assert stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70

    async with http.get(V1_PATH) as response:
        listing = await response.json()
    assert listing["kind"] == "HorizontalPodAutoscalerList"
    assert [i["apiVersion"] for i in listing["items"]] == ["autoscaling/v1"]

    bad = {**body, "metadata": {"name": "bad"}, "spec": {**body["spec"], "maxReplicas": "x"}}
    async with http.post(V1_PATH, json=bad) as response:
        assert response.status == 422
        assert "spec.maxReplicas" in (await response.json())["message"]
    async with http.get(V1_PATH, params={"watch": "1"}) as response:
        assert response.status == 405

    async with http.delete(f"{V1_PATH}/web") as response:
        assert response.status == 200
    async with http.get(f"{V1_PATH}/web") as response:
        assert response.status == 404
