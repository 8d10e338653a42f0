"""The scheduler: the per-node usage it keeps from pod events, the node it chooses, and the
retries when resources are freed, on an embedded server."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from reconciler.controllers import nodefit
from reconciler.controllers.nodefit import NodeUsage, Requests, pod_requests, resources_fit
from reconciler.controllers.persistentvolume import PersistentVolumeController
from reconciler.controllers.podutil import is_terminal
from reconciler.controllers.scheduler import NodeLedger, Scheduler, choose_node


def pod(
    name: str,
    node: str | None = None,
    cpu: str = "0",
    memory: str = "0",
    phase: str = "Pending",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
        ]
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
        "status": {"phase": phase},
    }


def node(name: str, pods: str = "110", cpu: str = "4", memory: str = "8Gi") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"pods": pods, "cpu": cpu, "memory": memory},
        },
    }


def summed(cache: dict[str, dict[str, Any]]) -> dict[str, NodeUsage]:
    """The usage as the scheduler used to compute it for every pod: from the whole cache."""
    usage: dict[str, NodeUsage] = {}
    for p in cache.values():
        where = p["spec"].get("nodeName")
        if where and not is_terminal(p):
            usage[where] = usage.get(where, NodeUsage()).plus(pod_requests(p["spec"]))
    return usage


# -- the ledger ---------------------------------------------------------------------------


def test_the_ledger_follows_binds_status_changes_finishes_and_deletes() -> None:
    ledger = NodeLedger()
    a = pod("a", cpu="100m", memory="64Mi")
    assert ledger.observe(a) is False
    assert ledger.usage == {}  # not bound: charges nothing
    bound = pod("a", "n1", cpu="100m", memory="64Mi", phase="Running")
    assert ledger.observe(bound) is False
    assert ledger.observe(pod("b", "n1")) is False
    assert ledger.usage == {"n1": NodeUsage(2, 100, 64 * 2**20)}
    # a status-only update (the same charge again) changes nothing
    assert ledger.observe(bound) is False
    assert ledger.usage == {"n1": NodeUsage(2, 100, 64 * 2**20)}
    # a terminating pod still holds its node, as in kube-scheduler
    terminating = pod("b", "n1", phase="Running")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert ledger.observe(terminating) is False
    assert ledger.usage["n1"].pods == 2
    # finishing frees the node
    assert ledger.observe(pod("a", "n1", cpu="100m", memory="64Mi", phase="Succeeded")) is True
    assert ledger.usage == {"n1": NodeUsage(1, 0, 0)}
    # a finished pod deleted later frees nothing more
    assert ledger.observe(pod("a", "n1", phase="Succeeded"), deleted=True) is False
    assert ledger.observe(terminating, deleted=True) is True
    assert ledger.usage == {}


def test_the_ledger_moves_a_pod_bound_again_elsewhere() -> None:
    ledger = NodeLedger()
    ledger.observe(pod("a", "n1", cpu="1"))
    ledger.observe(pod("b", "n1", cpu="500m"))
    # the same name, another node (a pod deleted and created again between two events)
    assert ledger.observe(pod("a", "n2", cpu="1")) is True
    assert ledger.usage == {"n1": NodeUsage(1, 500, 0), "n2": NodeUsage(1, 1000, 0)}
    # resized in place: the new requests replace the old ones
    assert ledger.observe(pod("a", "n2", cpu="2")) is True
    assert ledger.usage["n2"] == NodeUsage(1, 2000, 0)


def test_the_ledger_never_raises_on_a_quantity_it_cannot_read() -> None:
    ledger = NodeLedger()
    ledger.observe(pod("a", "n1", cpu="lots"))
    assert ledger.usage == {"n1": NodeUsage(1, 0, 0)}


def test_the_ledger_equals_the_sum_over_the_cache_after_any_events() -> None:
    rng = random.Random(7)
    ledger = NodeLedger()
    cache: dict[str, dict[str, Any]] = {}
    for _ in range(2000):
        name = f"p{rng.randrange(30)}"
        if name in cache and rng.random() < 0.2:
            ledger.observe(cache.pop(name), deleted=True)
        else:
            cache[name] = pod(
                name,
                rng.choice([None, "n1", "n2", "n3"]),
                cpu=rng.choice(["0", "100m", "1"]),
                memory=rng.choice(["0", "1Mi"]),
                phase=rng.choice(["Pending", "Running", "Running", "Succeeded", "Failed"]),
            )
            ledger.observe(cache[name])
        assert ledger.usage == summed(cache)


# -- choosing a node ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "cpu", "want"),
    [
        ({}, "0", ("n1", "")),
        ({"n1": NodeUsage(2)}, "0", ("n2", "")),  # fewest pods wins
        (
            {"n1": NodeUsage(3), "n2": NodeUsage(3)},
            "0",
            (None, "0/2 nodes are available: 2 Too many pods."),
        ),
        ({"n1": NodeUsage(1, 1500)}, "1", ("n2", "")),
        (
            {"n1": NodeUsage(1, 1500), "n2": NodeUsage(3)},
            "1",
            (None, "0/2 nodes are available: 1 Insufficient cpu, 1 Too many pods."),
        ),
        # a pod requesting nothing fits however much the others request
        ({"n1": NodeUsage(1, 2000, 2**30), "n2": NodeUsage(2)}, "0", ("n1", "")),
    ],
)
def test_choose_node_reads_the_usage(
    usage: dict[str, NodeUsage], cpu: str, want: tuple[str | None, str]
) -> None:
    nodes = [node("n1", pods="3", cpu="2", memory="1Gi"), node("n2", pods="3", cpu="2")]
    assert choose_node(pod("new", cpu=cpu), nodes, usage) == want


def test_resources_fit_skips_the_sum_when_the_pod_requests_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []

    def counting(spec: Any) -> Requests:
        calls.append(spec)
        return pod_requests(spec)

    monkeypatch.setattr(nodefit, "pod_requests", counting)
    placed = [pod(f"p{i}", "n1", cpu="100m")["spec"] for i in range(50)]
    allocatable = {"pods": "200", "cpu": "10", "memory": "1Gi"}
    assert resources_fit(pod("new")["spec"], allocatable, placed) is None
    assert len(calls) == 1  # the new pod's own requests only
    calls.clear()
    assert resources_fit(pod("new", cpu="100m")["spec"], allocatable, placed) is None
    assert len(calls) == 51
    assert resources_fit(pod("new", cpu="100m")["spec"], allocatable, [*placed] * 2) == (
        "Insufficient cpu"
    )


# -- host ports (NodePorts) ----------------------------------------------------------------


def with_ports(name: str, *ports: dict[str, Any], node_name: str | None = None) -> dict[str, Any]:
    body = pod(name, node_name)
    body["spec"]["containers"][0]["ports"] = list(ports)
    return body


@pytest.mark.parametrize(
    ("held", "wanted", "fits"),
    [
        ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}, False),
        # another protocol, another port: no conflict
        (
            {"containerPort": 53, "hostPort": 53},
            {"containerPort": 53, "hostPort": 53, "protocol": "UDP"},
            True,
        ),
        ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8081}, True),
        # two given addresses share a port; 0.0.0.0 (the default) takes it on every address
        (
            {"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"},
            {"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.2"},
            True,
        ),
        (
            {"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"},
            {"containerPort": 80, "hostPort": 8080},
            False,
        ),
        # a container port without a hostPort takes nothing on the node
        ({"containerPort": 80}, {"containerPort": 80, "hostPort": 80}, True),
    ],
)
def test_a_host_port_held_on_the_node_keeps_a_pod_wanting_it_off(
    held: dict[str, Any], wanted: dict[str, Any], fits: bool
) -> None:
    ledger = NodeLedger()
    ledger.observe(with_ports("holder", held, node_name="n1"))
    got = choose_node(with_ports("new", wanted), [node("n1")], ledger.usage)
    taken = "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
    assert got == (("n1", "") if fits else (None, taken))


def test_the_ledger_gives_a_host_port_back_when_its_pod_goes() -> None:
    ledger = NodeLedger()
    port = {"containerPort": 80, "hostPort": 8080}
    a, b = with_ports("a", port, node_name="n1"), with_ports("b", port, node_name="n1")
    ledger.observe(a)
    ledger.observe(b)  # two pods on one port (bound by hand): both are counted
    assert [h.port for h in ledger.usage["n1"].host_ports] == [8080, 8080]
    assert ledger.observe(a, deleted=True) is True
    assert [h.port for h in ledger.usage["n1"].host_ports] == [8080]
    ledger.observe(b, deleted=True)
    assert ledger.usage == {}


# -- on the embedded server ---------------------------------------------------------------


async def _phase(p: Any, name: str, phase: str) -> None:
    await p.client.patch(
        "v1", "Pod", name, {"status": {"phase": phase}}, namespace="default", subresource="status"
    )


async def test_a_waiting_pod_is_placed_when_a_bound_one_finishes_or_goes(plane: Any) -> None:
    made: list[Scheduler] = []

    def make(client: Any, clock: Any) -> Scheduler:
        made.append(Scheduler(client, clock))
        return made[0]

    p = await plane(make)
    await p.client.create(node("n1", pods="2", cpu="1"))
    for name in ("a", "b"):
        await p.client.create(pod(name, cpu="400m"))

    async def where(name: str) -> str:
        got = await p.client.get("v1", "Pod", name, "default")
        return str(got["spec"].get("nodeName") or "")

    async def waiting(name: str, message: str) -> bool:
        got = await p.client.get("v1", "Pod", name, "default")
        conditions = got.get("status", {}).get("conditions") or []
        return any(c.get("message") == message for c in conditions)

    for name in ("a", "b"):
        await p.eventually(lambda n=name: where(n), what=f"{name} bound")  # type: ignore[misc]
    await p.client.create(pod("c"))
    no_victims = (
        " preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )
    full = "0/1 nodes are available: 1 Too many pods." + no_victims
    await p.eventually(lambda: waiting("c", full), what="c unschedulable")
    # a finishes: its slot is free, and nothing else happens that would retry c
    await _phase(p, "a", "Succeeded")
    assert await p.eventually(lambda: where("c"), what="c placed") == "n1"
    assert made[0].ledger.usage == {"n1": NodeUsage(2, 400, 0)}

    await p.client.create(pod("d", cpu="700m"))
    await p.eventually(lambda: waiting("d", full), what="d unschedulable")
    await p.client.delete("v1", "Pod", "c", "default", grace_period=0)
    await p.eventually(
        lambda: waiting("d", "0/1 nodes are available: 1 Insufficient cpu." + no_victims),
        what="d waits for cpu, not a slot",
    )
    await p.client.delete("v1", "Pod", "b", "default", grace_period=0)
    assert await p.eventually(lambda: where("d"), what="d placed") == "n1"
    listed = {q["metadata"]["name"]: q for q in (await p.client.list("v1", "Pod", "default")).items}

    async def settled() -> bool:
        return made[0].ledger.usage == summed(listed)

    await p.eventually(settled, what="the ledger as the cache")
    assert made[0].ledger.usage == {"n1": NodeUsage(1, 700, 0)}


# -- priority and preemption --------------------------------------------------------------


def _classed(name: str, cpu: str, priority_class: str | None = None) -> dict[str, Any]:
    body = pod(name, cpu=cpu)
    if priority_class:
        body["spec"]["priorityClassName"] = priority_class
    return body


async def _status(p: Any, name: str) -> dict[str, Any]:
    got = await p.client.get("v1", "Pod", name, "default")
    return {"node": got["spec"].get("nodeName"), **(got.get("status") or {})}


async def test_a_higher_priority_pod_preempts_and_keeps_the_room_it_freed(plane: Any) -> None:
    p = await plane(lambda client, clock: Scheduler(client, clock))
    await p.client.create(node("n1", cpu="2"))
    await p.client.create(
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "high"},
            "value": 1000,
        }
    )
    for name, started in (("young", "2026-01-01T00:05:00Z"), ("old", "2026-01-01T00:00:00Z")):
        await p.client.create(_classed(name, "1"))
        await p.eventually(lambda n=name: _bound(p, n), what=f"{name} bound")  # type: ignore[misc]
        await p.client.patch(
            "v1",
            "Pod",
            name,
            {"status": {"startTime": started}},
            namespace="default",
            subresource="status",
        )
    await p.client.create(_classed("vip", "1", "high"))

    async def nominated() -> Any:
        status = await _status(p, "vip")
        return status.get("nominatedNodeName") == "n1" and status

    status = await p.eventually(nominated, what="vip nominated")
    assert status["node"] is None
    (scheduled,) = [c for c in status["conditions"] if c["type"] == "PodScheduled"]
    # the placement failure; once the victim is going, retries say the pod waits for it
    assert scheduled["message"] in (
        "0/1 nodes are available: 1 Insufficient cpu.",
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to a "
        "terminating pod on the nominated node.",
    )
    # the victim: of the two pods of lower priority, the one running for less time, told
    # why and deleted gracefully
    young = await p.client.get("v1", "Pod", "young", "default")
    assert young["metadata"].get("deletionTimestamp")
    (target,) = [c for c in young["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert (target["status"], target["reason"]) == ("True", "PreemptionByScheduler")
    old = await p.client.get("v1", "Pod", "old", "default")
    assert not old["metadata"].get("deletionTimestamp")

    async def preempted_event() -> Any:
        events = (await p.client.list("v1", "Event", "default")).items
        return [e["message"] for e in events if e.get("reason") == "Preempted"]

    assert await p.eventually(preempted_event, what="the Preempted event") == [
        "Preempted by default/vip on node n1"
    ]
    # a pod of lower priority arriving now does not take the room kept for vip
    await p.client.create(_classed("late", "1"))
    await p.client.delete("v1", "Pod", "young", "default", grace_period=0)  # the kubelet is done
    assert await p.eventually(lambda: _bound(p, "vip"), what="vip bound") == "n1"
    status = await _status(p, "vip")
    assert "nominatedNodeName" not in status
    late = await p.eventually(lambda: _unschedulable(p, "late"), what="late waits")
    assert late.startswith("0/1 nodes are available: 1 Insufficient cpu. preemption:")
    assert not (await p.client.get("v1", "Pod", "old", "default"))["metadata"].get(
        "deletionTimestamp"
    )


async def _bound(p: Any, name: str) -> str:
    got = await p.client.get("v1", "Pod", name, "default")
    return str(got["spec"].get("nodeName") or "")


async def _unschedulable(p: Any, name: str) -> str:
    got = await p.client.get("v1", "Pod", name, "default")
    for condition in (got.get("status") or {}).get("conditions") or []:
        if condition["type"] == "PodScheduled" and condition["status"] == "False":
            return str(condition["message"])
    return ""


async def test_never_preempting_pods_wait_and_the_highest_waiting_pod_goes_first(
    plane: Any,
) -> None:
    p = await plane(lambda client, clock: Scheduler(client, clock))
    await p.client.create(node("n1", cpu="1"))
    for name, value, policy in (("polite", 500, "Never"), ("urgent", 900, "Never")):
        await p.client.create(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
                "preemptionPolicy": policy,
            }
        )
    await p.client.create(_classed("holder", "1"))
    assert await p.eventually(lambda: _bound(p, "holder"), what="holder bound") == "n1"
    for name in ("first", "polite", "urgent"):
        await p.client.create(_classed(name, "1", None if name == "first" else name))
    for name in ("first", "polite", "urgent"):
        message = await p.eventually(
            lambda n=name: _unschedulable(p, n),  # type: ignore[misc]
            what=f"{name} unschedulable",
        )
    assert message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
        "preemptionPolicy=Never."
    )
    assert "nominatedNodeName" not in await _status(p, "urgent")
    assert not (await p.client.get("v1", "Pod", "holder", "default"))["metadata"].get(
        "deletionTimestamp"
    )
    # room for one: the pod of highest priority takes it, though it came last
    await p.client.delete("v1", "Pod", "holder", "default", grace_period=0)
    assert await p.eventually(lambda: _bound(p, "urgent"), what="urgent bound") == "n1"
    assert await _bound(p, "polite") == "" and await _bound(p, "first") == ""


async def test_pods_wait_for_their_claims(plane: Any) -> None:
    p = await plane(
        lambda client, clock: Scheduler(client, clock),
        lambda client, clock: PersistentVolumeController(client, clock, lambda u: f"v-{u}"),
    )
    await p.client.create(node("n1"))
    body = pod("db")
    body["spec"]["volumes"] = [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]
    await p.client.create(body)
    not_helpful = (
        " preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    assert await p.eventually(lambda: _unschedulable(p, "db"), what="waiting") == (
        '0/1 nodes are available: persistentvolumeclaim "data" not found.' + not_helpful
    )
    await p.client.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "other", "namespace": "default"},
            "spec": {
                "storageClassName": "fast",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    other = pod("other-db")
    other["spec"]["volumes"] = [{"name": "d", "persistentVolumeClaim": {"claimName": "other"}}]
    await p.client.create(other)
    assert await p.eventually(lambda: _unschedulable(p, "other-db"), what="no class") == (
        '0/1 nodes are available: storageclass.storage.k8s.io "fast" not found.' + not_helpful
    )
    await p.client.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {
                "storageClassName": "",  # no class: binds at once, to a volume made by hand
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )

    async def says_unbound() -> bool:
        return await _unschedulable(p, "db") == (
            "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
            + not_helpful
        )

    await p.eventually(says_unbound, what="unbound immediate claim")
    await p.client.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "by-hand"},
            "spec": {
                "capacity": {"storage": "2Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/srv/by-hand"},
            },
        }
    )
    assert await p.eventually(lambda: _bound(p, "db"), what="placed once bound") == "n1"


# -- inter-pod affinity -------------------------------------------------------------------


def _with_affinity(name: str, kind: str, **match: str) -> dict[str, Any]:
    body = pod(name)
    body["metadata"]["labels"] = {"app": name.rstrip("0123456789")}
    body["spec"]["affinity"] = {
        kind: {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": match}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    return body


async def test_anti_affinity_and_affinity_wait_for_the_other_pods(plane: Any) -> None:
    p = await plane(lambda client, clock: Scheduler(client, clock))
    n1 = node("n1")
    n1["metadata"]["labels"] = {"kubernetes.io/hostname": "n1"}
    await p.client.create(n1)
    # a cache that must sit next to a web pod: none yet, so it waits
    await p.client.create(_with_affinity("cache", "podAffinity", app="web"))
    for name in ("web1", "web2"):
        await p.client.create(_with_affinity(name, "podAntiAffinity", app="web"))

    async def state(name: str) -> tuple[str, str]:
        got = await p.client.get("v1", "Pod", name, "default")
        conditions = (got.get("status") or {}).get("conditions") or [{}]
        return str(got["spec"].get("nodeName") or ""), str(conditions[0].get("message") or "")

    async def placed_count() -> bool:
        return [(await state(n))[0] for n in ("web1", "web2")].count("n1") == 1

    await p.eventually(placed_count, what="one web pod placed")
    waiting = "web2" if (await state("web1"))[0] else "web1"

    async def refused() -> bool:
        return (await state(waiting))[1].startswith(
            "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules."
        )

    await p.eventually(refused, what="the other web pod waits, saying why")
    # the web pod placed is what the cache waited for
    assert await p.eventually(lambda: _bound(p, "cache"), what="cache placed") == "n1"
    # the first web pod goes: the second takes its place
    placed_one = "web1" if waiting == "web2" else "web2"
    await p.client.delete("v1", "Pod", placed_one, "default", grace_period=0)
    assert await p.eventually(lambda: _bound(p, waiting), what="the other placed") == "n1"


async def _bound(p: Any, name: str) -> str:
    got = await p.client.get("v1", "Pod", name, "default")
    return str(got["spec"].get("nodeName") or "")


async def test_topology_spread_keeps_a_second_replica_off_a_fuller_zone(plane: Any) -> None:
    p = await plane(lambda client, clock: Scheduler(client, clock))
    for name, zone in (("n1", "a"), ("n2", "b")):
        body = node(name)
        body["metadata"]["labels"] = {"topology.kubernetes.io/zone": zone}
        if name == "n2":
            body["spec"]["unschedulable"] = True  # cordoned: still a domain, holding none
        await p.client.create(body)
    for name in ("web1", "web2"):
        body = pod(name)
        body["metadata"]["labels"] = {"app": "web"}
        body["spec"]["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}},
            }
        ]
        await p.client.create(body)
        if name == "web1":
            assert await p.eventually(lambda: _bound(p, "web1"), what="web1 placed") == "n1"

    async def refused() -> bool:
        got = await p.client.get("v1", "Pod", "web2", "default")
        conditions = (got.get("status") or {}).get("conditions") or [{}]
        return str(conditions[0].get("message") or "").startswith(
            "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, "
            "1 node(s) were unschedulable."
        )

    await p.eventually(refused, what="web2 waits: zone a would hold two, zone b none")


async def test_a_gated_pod_waits_until_its_last_gate_is_removed(plane: Any) -> None:
    p = await plane(lambda client, clock: Scheduler(client, clock))
    await p.client.create(node("n1"))
    gated = pod("gated")
    gated["spec"]["schedulingGates"] = [{"name": "example.com/quota"}, {"name": "b"}]
    await p.client.create(gated)

    async def says_gated() -> bool:
        got = await p.client.get("v1", "Pod", "gated", "default")
        conditions = (got.get("status") or {}).get("conditions") or [{}]
        return conditions[0].get("reason") == "SchedulingGated" and conditions[0].get(
            "message"
        ) == ("Scheduling is blocked due to non-empty scheduling gates")

    await p.eventually(says_gated, what="PodScheduled False, SchedulingGated")
    assert await _bound(p, "gated") == ""
    events = await p.client.list("v1", "Event", "default")
    assert not [e for e in events.items if e.get("reason") == "FailedScheduling"]
    for left in ([{"name": "b"}], []):
        live = await p.client.get("v1", "Pod", "gated", "default")
        live["spec"]["schedulingGates"] = left
        await p.client.update(live)
        if left:
            await asyncio.sleep(0.1)
            assert await _bound(p, "gated") == ""  # one gate left: still waiting
    assert await p.eventually(lambda: _bound(p, "gated"), what="placed") == "n1"
