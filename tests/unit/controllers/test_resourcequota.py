"""ResourceQuota and LimitRange on an embedded server: admission refuses what goes over, the
controller keeps `status.used`, LimitRange defaults reach new pods."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.client.errors import ForbiddenError
from reconciler.controllers.resourcequota import ResourceQuotaController

JSONDict = dict[str, Any]


def pod(name: str, cpu: str | None = "250m") -> JSONDict:
    resources = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}} if cpu else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "x", "resources": resources}]},
    }


def quota(**hard: str) -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "team", "namespace": "default"},
        "spec": {"hard": hard},
    }


async def test_quota_refuses_and_counts(plane: Any) -> None:
    p = await plane(lambda client, clock: ResourceQuotaController(client, clock))
    await p.client.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
    )
    await p.client.create(
        quota(pods="2", **{"requests.cpu": "400m", "limits.cpu": "1", "count/configmaps": "1"})
    )

    async def used() -> Any:
        got = await p.client.get("v1", "ResourceQuota", "team", "default")
        return (got.get("status") or {}).get("used")

    async def used_is(expected: JSONDict) -> bool:
        return await used() == expected

    await p.eventually(
        lambda: used_is(
            {"pods": "0", "requests.cpu": "0", "limits.cpu": "0", "count/configmaps": "1"}
        ),
        what="the first count",
    )
    await p.client.create(pod("a"))
    with pytest.raises(ForbiddenError) as caught:
        await p.client.create(pod("b", cpu="200m"))
    assert str(caught.value) == (
        'pods "b" is forbidden: exceeded quota: team, requested: requests.cpu=200m, used: '
        "requests.cpu=250m, limited: requests.cpu=400m"
    )
    with pytest.raises(ForbiddenError) as caught:
        await p.client.create(pod("c", cpu=None))
    assert str(caught.value) == (
        'pods "c" is forbidden: failed quota: team: must specify limits.cpu for: app; '
        "requests.cpu for: app"
    )
    with pytest.raises(ForbiddenError):
        await p.client.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "d", "namespace": "default"},
            }
        )
    assert [q["metadata"]["name"] for q in await p.pods()] == ["a"]
    await p.eventually(
        lambda: used_is(
            {"pods": "1", "requests.cpu": "250m", "limits.cpu": "250m", "count/configmaps": "1"}
        ),
        what="a counted",
    )
    await p.client.create(pod("b", cpu="150m"))
    await p.client.delete("v1", "Pod", "a", "default")
    await p.eventually(
        lambda: used_is(
            {"pods": "1", "requests.cpu": "150m", "limits.cpu": "150m", "count/configmaps": "1"}
        ),
        what="a gone, b counted",
    )
    got = await p.client.get("v1", "ResourceQuota", "team", "default")
    assert got["status"]["hard"] == got["spec"]["hard"]


async def test_limit_ranges_default_and_bound_new_pods(plane: Any) -> None:
    p = await plane()
    await p.client.create(
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "limits", "namespace": "default"},
            "spec": {
                "limits": [{"type": "Container", "default": {"cpu": "500m"}, "max": {"cpu": "1"}}]
            },
        }
    )
    stored = await p.client.get("v1", "LimitRange", "limits", "default")
    assert stored["spec"]["limits"][0]["defaultRequest"] == {"cpu": "500m"}
    created = await p.client.create(pod("plain", cpu=None))
    assert created["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m"},
        "requests": {"cpu": "500m"},
    }
    assert created["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu request for container app; cpu limit for container app"
    )
    with pytest.raises(ForbiddenError) as caught:
        await p.client.create(pod("big", cpu="2"))
    assert str(caught.value) == (
        'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
    )


async def test_updates_that_use_more_are_held_to_the_quota(plane: Any) -> None:
    p = await plane()
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
    }
    await p.client.create(service)
    await p.client.create(quota(**{"services.loadbalancers": "0", "services": "1"}))
    # using no more is fine, though the namespace is at its quota of Services
    await p.client.patch(
        "v1", "Service", "web", {"metadata": {"labels": {"tier": "front"}}}, namespace="default"
    )
    await p.client.patch(
        "v1", "Service", "web", {"spec": {"ports": [{"port": 8080}]}}, namespace="default"
    )
    with pytest.raises(ForbiddenError) as caught:
        await p.client.patch(
            "v1", "Service", "web", {"spec": {"type": "LoadBalancer"}}, namespace="default"
        )
    assert str(caught.value) == (
        'services "web" is forbidden: exceeded quota: team, requested: '
        "services.loadbalancers=1, used: services.loadbalancers=0, limited: "
        "services.loadbalancers=0"
    )
    stored = await p.client.get("v1", "Service", "web", "default")
    assert stored["spec"].get("type", "ClusterIP") == "ClusterIP"
