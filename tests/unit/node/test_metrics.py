"""The resource metrics pipeline: cgroup and /proc parsing, the collector's rates, and the
metrics.k8s.io API over HTTP (a fake runtime reports the usage; a manual clock times it)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.metrics_api import answer
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.clock import ManualClock
from reconciler.node.metrics import (
    HostSample,
    MetricsCollector,
    parse_meminfo,
    parse_proc_stat,
    running_containers,
)
from reconciler.runtime.base import ResourceUsage
from reconciler.runtime.cgroup_usage import cgroup_dirs, read_usage

JSONDict = dict[str, Any]

# -- parsing ---------------------------------------------------------------------------------


def test_cgroup_dirs_v1_and_v2(tmp_path: Path) -> None:
    (tmp_path / "cpuacct").mkdir()
    v1 = "4:memory:/docker/abc\n2:cpuacct:/docker/abc\n1:cpu:/docker/abc\n0::/docker/abc\n"
    assert cgroup_dirs(v1, tmp_path) == {
        "cpu": tmp_path / "cpuacct" / "docker/abc",
        "memory": tmp_path / "memory" / "docker/abc",
    }
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    assert cgroup_dirs("0::/system.slice/docker-abc.scope\n", tmp_path) == {
        "cpu": tmp_path / "system.slice/docker-abc.scope",
        "memory": tmp_path / "system.slice/docker-abc.scope",
    }


def test_read_usage_of_this_process_cgroup() -> None:
    """The test runs in a real cgroup: CPU time only grows, memory is positive."""
    import os

    first = read_usage(os.getpid())
    if first is None:
        pytest.skip("no readable cgroup files here")
    sum(range(2_000_000))
    second = read_usage(os.getpid())
    assert second is not None
    assert second.cpu_ns >= first.cpu_ns > 0
    assert second.memory_bytes > 0


def test_proc_stat_and_meminfo() -> None:
    stat = "cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 50 2 25 500 10 0 1 1 0 0\n"
    assert parse_proc_stat(stat, ticks_per_s=100) == (100 + 5 + 50 + 1 + 2 + 3) * 10_000_000
    meminfo = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    600 kB\n"
    assert parse_meminfo(meminfo) == 400 * 1024


# -- the collector ---------------------------------------------------------------------------


class FakeRuntime:
    """Usage the test sets, by container id."""

    def __init__(self) -> None:
        self.usages: dict[str, ResourceUsage] = {}

    async def usage(self, container_id: str) -> ResourceUsage | None:
        return self.usages.get(container_id)


class Node:
    """Pods bound to `node-a` whose statuses name their running containers (as the node
    agent writes them), and one pod of another node."""

    def __init__(self) -> None:
        self.pods: dict[str, JSONDict] = {}
        self.add("web-1", [("app", "c1"), ("sidecar", "c2")])
        self.add("db-1", [("db", "c3")])
        self.add("elsewhere-1", [("x", "c9")], node="node-b")

    def add(self, name: str, containers: list[tuple[str, str]], node: str = "node-a") -> None:
        self.pods[name] = {
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": f"uid-{name}",
                "labels": {"app": name.split("-")[0]},
            },
            "spec": {"nodeName": node},
            "status": {
                "containerStatuses": [
                    {"name": c, "containerID": f"docker://{cid}", "state": {"running": {}}}
                    for c, cid in containers
                ]
            },
        }

    def get(self, namespace: str, name: str) -> JSONDict | None:
        return self.pods.get(name)

    def list(self) -> list[JSONDict]:
        return list(self.pods.values())


@pytest.fixture
def collector() -> tuple[MetricsCollector, FakeRuntime, ManualClock, Node]:
    runtime = FakeRuntime()
    node = Node()
    clock = ManualClock()
    # 3 s of busy CPU per 15 s round; memory grows by 1 GiB a round.
    rounds = itertools.count()

    def host() -> HostSample:
        n = next(rounds)
        return HostSample(n * 3_000_000_000, (n + 1) << 30)

    made = MetricsCollector(runtime, clock, "node-a", node.get, node.list, resolution=15, host=host)
    return made, runtime, clock, node


async def test_rates_need_two_samples_and_are_per_container(
    collector: tuple[MetricsCollector, FakeRuntime, ManualClock, Node],
) -> None:
    made, runtime, clock, _node = collector
    runtime.usages = {
        "c1": ResourceUsage(1_000_000_000, 10 << 20),
        "c2": ResourceUsage(0, 1 << 20),
        "c3": ResourceUsage(5_000_000_000, 100 << 20),
        "c9": ResourceUsage(0, 1),
    }
    await made.scrape()
    assert made.pod_metrics() == [] and made.node_metrics() == []
    clock.advance(15)
    runtime.usages["c1"] = ResourceUsage(4_000_000_000, 12 << 20)  # 3 s of CPU in 15 s
    runtime.usages["c2"] = ResourceUsage(150_000_000, 2 << 20)
    await made.scrape()
    metrics = {m["metadata"]["name"]: m for m in made.pod_metrics()}
    assert set(metrics) == {"db-1", "web-1"}  # not the other node's pod
    web = metrics["web-1"]
    assert web["metadata"]["labels"] == {"app": "web"}
    assert web["window"] == "15s" and web["timestamp"] == "2026-01-01T00:00:15Z"
    assert web["containers"] == [
        {"name": "app", "usage": {"cpu": "200000000n", "memory": "12288Ki"}},
        {"name": "sidecar", "usage": {"cpu": "10000000n", "memory": "2048Ki"}},
    ]
    assert metrics["db-1"]["containers"][0]["usage"]["cpu"] == "0n"
    (node,) = made.node_metrics()
    assert node["metadata"]["name"] == "node-a"
    assert node["usage"] == {"cpu": "200000000n", "memory": f"{2 << 20}Ki"}


async def test_a_gone_or_restarted_container_is_not_reported(
    collector: tuple[MetricsCollector, FakeRuntime, ManualClock, Node],
) -> None:
    made, runtime, clock, node = collector
    runtime.usages = {"c1": ResourceUsage(0, 1 << 20), "c3": ResourceUsage(0, 1 << 20)}
    del node.pods["db-1"]
    await made.scrape()
    clock.advance(15)
    await made.scrape()
    assert [m["metadata"]["name"] for m in made.pod_metrics()] == ["web-1"]
    node.add("web-1", [("app", "c1b")])  # restarted: a new engine container
    runtime.usages["c1b"] = ResourceUsage(0, 1 << 20)
    clock.advance(15)
    await made.scrape()
    assert made.pod_metrics() == []  # the new container has one sample only


# -- the API ---------------------------------------------------------------------------------


class Source:
    def __init__(self) -> None:
        self.pods = [
            {
                "kind": "PodMetrics",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
                "containers": [],
            }
            for ns, name, app in (("a", "web-1", "web"), ("a", "db-1", "db"), ("b", "web-2", "web"))
        ]
        self.nodes = [{"kind": "NodeMetrics", "metadata": {"name": "node-a"}, "usage": {}}]

    def pod_metrics(self) -> list[JSONDict]:
        return self.pods

    def node_metrics(self) -> list[JSONDict]:
        return self.nodes


def names(listing: JSONDict) -> list[str]:
    return [i["metadata"]["name"] for i in listing["items"]]


def test_answer_lists_gets_and_selects() -> None:
    source = Source()
    assert names(answer("GET", ["pods"], {}, source)) == ["web-1", "db-1", "web-2"]
    assert names(answer("GET", ["namespaces", "a", "pods"], {}, source)) == ["web-1", "db-1"]
    assert names(answer("GET", ["pods"], {"labelSelector": "app=web"}, source)) == [
        "web-1",
        "web-2",
    ]
    by_field = answer("GET", ["pods"], {"fieldSelector": "metadata.namespace=b"}, source)
    assert names(by_field) == ["web-2"]
    assert answer("GET", ["namespaces", "a", "pods", "db-1"], {}, source)["metadata"] == {
        "name": "db-1",
        "namespace": "a",
        "labels": {"app": "db"},
    }
    assert answer("GET", ["nodes"], {}, source)["kind"] == "NodeMetricsList"
    with pytest.raises(ApiError) as missing:
        answer("GET", ["namespaces", "b", "pods", "db-1"], {}, source)
    assert missing.value.code == 404
    assert 'podmetrics.metrics.k8s.io "b/db-1" not found' in missing.value.message
    with pytest.raises(ApiError) as bad:
        answer("GET", ["pods"], {"fieldSelector": "spec.nodeName=x"}, source)
    assert bad.value.code == 400
    with pytest.raises(ApiError) as write:
        answer("POST", ["pods"], {}, source)
    assert write.value.code == 405


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[ApiServer, aiohttp.ClientSession]]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    assert server.credentials is not None
    async with aiohttp.ClientSession(
        base_url=f"https://127.0.0.1:{server.port}",
        headers={"Authorization": f"Bearer {server.credentials.token}"},
        connector=aiohttp.TCPConnector(ssl=False),
    ) as session:
        yield server, session
    await server.stop()


async def test_the_group_is_discovered_only_with_a_source(
    http: tuple[ApiServer, aiohttp.ClientSession],
) -> None:
    server, session = http

    async def groups() -> list[str]:
        async with session.get("/apis") as response:
            return [g["name"] for g in (await response.json())["groups"]]

    assert "metrics.k8s.io" not in await groups()
    async with session.get("/apis/metrics.k8s.io/v1beta1/pods") as response:
        assert response.status == 404
    server.metrics = Source()
    assert "metrics.k8s.io" in await groups()
    async with session.get("/apis/metrics.k8s.io/v1beta1") as response:
        resources = (await response.json())["resources"]
    assert {r["name"]: r["kind"] for r in resources} == {
        "nodes": "NodeMetrics",
        "pods": "PodMetrics",
    }
    async with session.get(
        "/apis/metrics.k8s.io/v1beta1/namespaces/a/pods", params={"labelSelector": "app=web"}
    ) as response:
        assert response.status == 200
        assert names(await response.json()) == ["web-1"]


def test_running_sidecars_and_debug_containers_are_measured_too() -> None:
    def status(name: str, running: bool = True) -> JSONDict:
        state = {"running": {}} if running else {"terminated": {"exitCode": 0}}
        return {"name": name, "containerID": f"docker://{name}-id", "state": state}

    pod = {
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {"nodeName": "n1"},
        "status": {
            "initContainerStatuses": [status("setup", running=False), status("proxy")],
            "containerStatuses": [status("app")],
            "ephemeralContainerStatuses": [status("debugger"), status("done", running=False)],
        },
    }
    elsewhere = {**pod, "spec": {"nodeName": "n2"}}
    found = running_containers([pod, elsewhere], "n1")
    assert [(c.name, c.id) for c in found] == [
        ("proxy", "proxy-id"),
        ("app", "app-id"),
        ("debugger", "debugger-id"),
    ]
