"""The HPA controller against the in-process API server, with a fake resource metrics API
and the injected clock: scaling up, the scale-down window, status, conditions and events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.apiserver.tables import build_table
from reconciler.clock import ManualClock, rfc3339
from reconciler.controllers.hpa import HorizontalPodAutoscalerController

JSONDict = dict[str, Any]

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CPU_ABOVE = "cpu resource utilization (percentage of request) above target"


class FakeMetrics:
    """A resource metrics API: PodMetrics for the pods it was told about, on any selector
    (the controller matches pods itself); every call is kept."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.cpu: dict[str, str] = {}
        self.memory: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, namespace: str, selector: str) -> list[JSONDict]:
        self.calls.append((namespace, selector))
        return [
            {
                "kind": "PodMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": "web"}},
                "timestamp": rfc3339(self.clock.now()),
                "window": "15s",
                "containers": [
                    {
                        "name": "c",
                        "usage": {"cpu": cpu, "memory": self.memory.get(name, "10Mi")},
                    }
                ],
            }
            for name, cpu in sorted(self.cpu.items())
        ]


def deployment(replicas: int) -> JSONDict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def autoscale(cpu_percent: int | None = 50, min_pods: int = 1, max_pods: int = 10) -> JSONDict:
    """What `kubectl autoscale deployment web --min=.. --max=.. --cpu-percent=..` creates."""
    spec: JSONDict = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": min_pods,
        "maxReplicas": max_pods,
    }
    if cpu_percent is not None:
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": cpu_percent},
                },
            }
        ]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }


async def add_pod(p: Any, name: str, requests: JSONDict | None = None) -> None:
    """A running, long-ready pod of the Deployment (no node agent in these tests)."""
    resources = {"requests": {"cpu": "500m"} if requests is None else requests}
    created = await p.client.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]},
        }
    )
    started = rfc3339(T0 - timedelta(minutes=10))
    created["status"] = {
        "phase": "Running",
        "startTime": started,
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started}],
    }
    await p.client.update(created, subresource="status")


async def start(
    plane: Any, replicas: int, pods: int, metrics: FakeMetrics | None, cpu: str = "500m"
) -> tuple[Any, ManualClock]:
    clock = metrics.clock if metrics is not None else ManualClock(T0)
    p = await plane(
        lambda client, k: HorizontalPodAutoscalerController(client, k, metrics=metrics),
        clock=clock,
    )
    await p.client.create(deployment(replicas))
    for i in range(pods):
        await add_pod(p, f"web-{i}")
        if metrics is not None:
            metrics.cpu[f"web-{i}"] = cpu
    return p, clock


async def hpa_status(p: Any) -> JSONDict:
    got = await p.client.get("autoscaling/v2", "HorizontalPodAutoscaler", "web", "default")
    return dict(got.get("status") or {})


async def replicas(p: Any) -> int:
    return int((await p.client.get("apps/v1", "Deployment", "web", "default"))["spec"]["replicas"])


async def events(p: Any) -> list[tuple[str, str, str]]:
    listed = await p.client.list("v1", "Event", "default")
    return [
        (e["type"], e["reason"], e["message"])
        for e in listed.items
        if e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"
    ]


def condition(status: JSONDict, kind: str) -> JSONDict:
    return next(c for c in status.get("conditions") or [] if c["type"] == kind)


async def test_scales_up_when_cpu_is_above_target(plane: Any) -> None:
    metrics = FakeMetrics(ManualClock(T0))
    p, _ = await start(plane, replicas=2, pods=2, metrics=metrics)  # 500m of 500m: 100%
    await p.client.create(autoscale(cpu_percent=50))

    async def scaled() -> bool:
        return await replicas(p) == 4 and (await hpa_status(p)).get("desiredReplicas") == 4

    await p.eventually(scaled, what="the Deployment scaled to 4")
    status = await hpa_status(p)
    assert status["currentReplicas"] == 2
    assert status["lastScaleTime"] == rfc3339(T0)
    assert status["observedGeneration"] == 1
    assert status["currentMetrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "current": {"averageUtilization": 100, "averageValue": "500m"},
            },
        }
    ]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("AbleToScale", "True", "SucceededRescale"),
        ("ScalingActive", "True", "ValidMetricFound"),
        ("ScalingLimited", "False", "DesiredWithinRange"),
    ]
    assert condition(status, "ScalingActive")["message"] == (
        "the HPA was able to successfully calculate a replica count from cpu resource "
        "utilization (percentage of request)"
    )
    assert condition(status, "AbleToScale")["message"] == (
        "the HPA controller was able to update the target scale to 4"
    )
    assert ("Normal", "SuccessfulRescale", f"New size: 4; reason: {CPU_ABOVE}") in await events(p)
    assert metrics.calls[0] == ("default", "app=web")
    hpa = await p.client.get("autoscaling/v2", "HorizontalPodAutoscaler", "web", "default")
    row = build_table("HorizontalPodAutoscaler", [hpa], T0)["rows"][0]["cells"]
    assert row[:6] == ["web", "Deployment/web", "cpu: 100%/50%", "1", 10, 2]


async def test_scale_down_waits_out_the_300s_window(plane: Any) -> None:
    metrics = FakeMetrics(ManualClock(T0))
    p, clock = await start(plane, replicas=4, pods=4, metrics=metrics, cpu="50m")  # 10%
    await p.client.create(autoscale(cpu_percent=50))

    async def stabilized() -> bool:
        status = await hpa_status(p)
        return bool(status.get("conditions")) and (
            condition(status, "AbleToScale")["reason"] == "ScaleDownStabilized"
        )

    await p.eventually(stabilized, what="the first sync")
    status = await hpa_status(p)
    assert (status["currentReplicas"], status["desiredReplicas"]) == (4, 4)
    assert condition(status, "AbleToScale")["message"] == (
        "recent recommendations were higher than current one, applying the highest recent "
        "recommendation"
    )
    # Every 15 s the controller looks again; for 300 s the first recommendation (the size
    # it found, 4) is in the window and holds the scale-down back.
    for step in range(1, 21):
        seen = len(metrics.calls)
        await asyncio.sleep(0.01)  # the requeue timer is set once the reconcile returns
        clock.advance(15)
        await p.eventually(lambda seen=seen: _called_after(metrics, seen), what=f"sync {step}")
        await asyncio.sleep(0.01)
        assert await replicas(p) == 4, f"scaled down after {15 * step} s"
    seen = len(metrics.calls)
    clock.advance(15)  # 315 s: only recommendations of 1 are left in the window

    async def scaled_down() -> bool:
        return await replicas(p) == 1

    await p.eventually(scaled_down, what="the scale-down after the window")
    status = await hpa_status(p)
    assert status["desiredReplicas"] == 1
    assert status["lastScaleTime"] == rfc3339(T0 + timedelta(seconds=315))
    message = "New size: 1; reason: All metrics below target"
    assert ("Normal", "SuccessfulRescale", message) in await events(p)
    assert len(metrics.calls) > seen


async def _called_after(metrics: FakeMetrics, seen: int) -> bool:
    return len(metrics.calls) > seen


async def test_behavior_limits_the_scale_up_rate(plane: Any) -> None:
    metrics = FakeMetrics(ManualClock(T0))
    p, clock = await start(plane, replicas=2, pods=2, metrics=metrics, cpu="2500m")  # 500%
    hpa = autoscale(cpu_percent=50, max_pods=30)
    hpa["spec"]["behavior"] = {"scaleUp": {"stabilizationWindowSeconds": 0}}
    await p.client.create(hpa)

    async def at(n: int) -> bool:
        return await replicas(p) == n

    await p.eventually(lambda: at(6), what="2 -> 6: +4 pods beats +100%")
    status = await hpa_status(p)
    assert condition(status, "ScalingLimited")["status"] == "True"
    assert condition(status, "ScalingLimited")["reason"] == "ScaleUpLimit"
    await asyncio.sleep(0.01)
    clock.advance(15)
    await p.eventually(lambda: at(12), what="6 -> 12: +100% beats +4 pods")


async def test_memory_average_value(plane: Any) -> None:
    metrics = FakeMetrics(ManualClock(T0))
    p, _ = await start(plane, replicas=2, pods=2, metrics=metrics)
    metrics.memory = {"web-0": "200Mi", "web-1": "200Mi"}
    hpa = autoscale(cpu_percent=None)
    hpa["spec"]["metrics"] = [
        {
            "type": "Resource",
            "resource": {
                "name": "memory",
                "target": {"type": "AverageValue", "averageValue": "100Mi"},
            },
        }
    ]
    await p.client.create(hpa)

    async def scaled() -> bool:
        return await replicas(p) == 4

    await p.eventually(scaled, what="memory at twice the target doubles the pods")
    status = await hpa_status(p)
    assert status["currentMetrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "memory", "current": {"averageValue": "209715200"}},
        }
    ]
    message = "New size: 4; reason: memory resource above target"
    assert ("Normal", "SuccessfulRescale", message) in await events(p)


async def failing(p: Any, reason: str) -> JSONDict:
    async def check() -> JSONDict | None:
        status = await hpa_status(p)
        conditions = [c for c in status.get("conditions") or [] if c["reason"] == reason]
        return conditions[0] if conditions else None

    found: JSONDict = await p.eventually(check, what=reason)
    return found


async def test_without_metrics_scaling_is_not_active(plane: Any) -> None:
    p, _ = await start(plane, replicas=2, pods=2, metrics=None)
    await p.client.create(autoscale(cpu_percent=None))  # no metrics: upstream's cpu 80%
    found = await failing(p, "FailedGetResourceMetric")
    inner = (
        "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics "
        "returned from resource metrics API"
    )
    assert (found["type"], found["status"]) == ("ScalingActive", "False")
    assert found["message"] == f"the HPA was unable to compute the replica count: {inner}"
    status = await hpa_status(p)
    assert status["currentMetrics"] == [{"type": ""}]
    assert status["currentReplicas"] == 2
    assert condition(status, "AbleToScale")["reason"] == "SucceededGetScale"
    assert await replicas(p) == 2
    seen = await events(p)
    assert ("Warning", "FailedGetResourceMetric", inner) in seen
    assert (
        "Warning",
        "FailedComputeMetricsReplicas",
        f"invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource "
        f"metric value: {inner}",
    ) in seen
    hpa = await p.client.get("autoscaling/v2", "HorizontalPodAutoscaler", "web", "default")
    row = build_table("HorizontalPodAutoscaler", [hpa], T0)["rows"][0]["cells"]
    assert row[2] == "cpu: <unknown>/80%"  # the API defaults spec.metrics to 80 % CPU


async def test_a_pod_without_a_cpu_request(plane: Any) -> None:
    metrics = FakeMetrics(ManualClock(T0))
    p, _ = await start(plane, replicas=2, pods=1, metrics=metrics)
    await add_pod(p, "web-1", requests={"memory": "64Mi"})
    metrics.cpu["web-1"] = "100m"
    await p.client.create(autoscale())
    found = await failing(p, "FailedGetResourceMetric")
    assert found["message"] == (
        "the HPA was unable to compute the replica count: failed to get cpu utilization: "
        "missing request for cpu in container c of Pod web-1"
    )
    assert await replicas(p) == 2


async def test_a_target_without_a_scale_subresource(plane: Any) -> None:
    p, _ = await start(plane, replicas=1, pods=0, metrics=None)
    hpa = autoscale()
    hpa["spec"]["scaleTargetRef"] = {"apiVersion": "v1", "kind": "ConfigMap", "name": "web"}
    await p.client.create(hpa)
    found = await failing(p, "FailedGetScale")
    assert (found["type"], found["status"]) == ("AbleToScale", "False")
    assert found["message"].startswith(
        "the HPA controller was unable to get the target's current scale: spec.scaleTargetRef: "
        "ConfigMap v1 has no scale subresource"
    )
    assert any(e[1] == "FailedGetScale" and "ConfigMap" in e[2] for e in await events(p))


async def test_a_missing_target(plane: Any) -> None:
    p, _ = await start(plane, replicas=1, pods=0, metrics=None)
    hpa = autoscale()
    hpa["spec"]["scaleTargetRef"]["name"] = "absent"
    await p.client.create(hpa)
    found = await failing(p, "FailedGetScale")
    assert found["message"].endswith('spec.scaleTargetRef: deployments.apps "absent" not found')


async def test_zero_replicas_disable_scaling(plane: Any) -> None:
    metrics = FakeMetrics(ManualClock(T0))
    p, _ = await start(plane, replicas=0, pods=0, metrics=metrics)
    await p.client.create(autoscale())
    found = await failing(p, "ScalingDisabled")
    assert found["message"] == "scaling is disabled since the replica count of the target is zero"
    assert await replicas(p) == 0
    assert metrics.calls == []


async def test_replicas_above_max_come_down_at_once(plane: Any) -> None:
    metrics = FakeMetrics(ManualClock(T0))
    p, _ = await start(plane, replicas=12, pods=2, metrics=metrics)
    await p.client.create(autoscale(max_pods=10))

    async def capped() -> bool:
        return await replicas(p) == 10

    await p.eventually(capped, what="capped at maxReplicas")
    message = "New size: 10; reason: Current number of replicas above Spec.MaxReplicas"
    assert ("Normal", "SuccessfulRescale", message) in await events(p)


async def test_custom_metric_types_are_not_supported(plane: Any) -> None:
    metrics = FakeMetrics(ManualClock(T0))
    p, _ = await start(plane, replicas=2, pods=2, metrics=metrics)
    hpa = autoscale(cpu_percent=None)
    hpa["spec"]["metrics"] = [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "packets-per-second"},
                "target": {"type": "AverageValue", "averageValue": "1k"},
            },
        }
    ]
    await p.client.create(hpa)
    found = await failing(p, "FailedGetPodsMetric")
    assert found["message"] == (
        "the HPA was unable to compute the replica count: unable to get metric "
        "packets-per-second: Recon does not serve the custom metrics API "
        "(custom.metrics.k8s.io); only Resource and ContainerResource metrics are supported"
    )
    assert metrics.calls == []  # nothing asked of the resource metrics API


async def test_a_failing_metric_does_not_block_a_scale_up(plane: Any) -> None:
    metrics = FakeMetrics(ManualClock(T0))
    p, _ = await start(plane, replicas=2, pods=2, metrics=metrics)
    hpa = autoscale(cpu_percent=50)
    hpa["spec"]["metrics"].append(
        {
            "type": "External",
            "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}},
        }
    )
    await p.client.create(hpa)

    async def scaled() -> bool:
        return await replicas(p) == 4

    await p.eventually(scaled, what="cpu scales up though the external metric fails")
    status = await hpa_status(p)
    assert status["currentMetrics"][1] == {"type": ""}
    assert condition(status, "ScalingActive")["reason"] == "ValidMetricFound"
