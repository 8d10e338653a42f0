"""Node-pressure eviction through the node agent on the in-memory runtime: the Node's
pressure conditions, the pod that goes first and how it ends, new pods refused, relief.

The signals are a dict the test sets (the host's are what `eviction_signals` measures,
tested on its own); each container's memory use is set on the runtime."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from reconciler.node.agent import NodeAgent
from reconciler.node.context import NodeSettings
from reconciler.node.eviction_thresholds import Observation, eviction_config
from reconciler.node.prober import MemoryProber
from reconciler.runtime.base import ResourceUsage
from tests.unit.node.conftest import NODE, NodeHarness, condition

JSONDict = dict[str, Any]
Mi = 1024 * 1024
Gi = 1024 * Mi


def node_condition(node: JSONDict, kind: str) -> JSONDict:
    return next(c for c in node["status"]["conditions"] if c["type"] == kind)


async def start_pressured_agent(
    node: NodeHarness, signals: dict[str, Observation], transition: str = "30s"
) -> NodeAgent:
    await node.stop_agent()
    settings = NodeSettings(
        node_name=NODE,
        agent_id="test",
        pause_image="fake/pause",
        eviction=eviction_config("memory.available<100Mi", transition_period=transition),
    )
    node.agent = NodeAgent(
        node.client,
        node.runtime,
        node.clock,
        settings,
        MemoryProber(node.runtime),
        signals=lambda: dict(signals),
    )
    await node.agent.start()
    return node.agent


def app(name: str, memory: str | None = None, **spec: Any) -> JSONDict:
    resources = {"requests": {"memory": memory}} if memory else {}
    return {
        "containers": [
            {"name": name, "image": "fake/script", "args": ["wait"], "resources": resources}
        ],
        **spec,
    }


async def use_memory(node: NodeHarness, pod: str, container: str, amount: int) -> None:
    (record,) = await node.containers(await node.pod(pod), container)
    node.runtime.set_usage(record.id, ResourceUsage(0, amount))


def failed(pod: JSONDict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Failed"


async def evicted_in_time(node: NodeHarness, name: str) -> JSONDict:
    """Move the clock a second at a time until the eviction manager has picked the pod (a
    round started while the clock moved, its measurement in a thread, sleeps from where the
    clock was), then wait for the pod to fail without moving it further: the manager waits
    up to 30 s of that clock for the pod's cleanup before its next round, so a clock raced
    ahead of a busy worker would let the next round evict another pod meanwhile."""

    async def picked() -> bool:
        pod = await node.pod(name)
        assert node.agent is not None
        worker = node.agent.workers.get(str(pod["metadata"]["uid"]))
        if failed(pod) or (worker is not None and worker.evicting):
            return True
        await node.advance(1)
        return False

    async def has_failed() -> JSONDict | None:
        pod = await node.pod(name)
        return pod if failed(pod) else None

    await node.eventually(picked, timeout=15.0, what=f"{name} picked for eviction")
    evicted: JSONDict = await node.eventually(has_failed, timeout=15.0, what=f"{name} evicted")
    return evicted


async def test_memory_pressure_evicts_the_pod_most_over_its_request(node: NodeHarness) -> None:
    signals = {"memory.available": Observation(4 * Gi, 8 * Gi)}
    await start_pressured_agent(node, signals)
    await node.create_pod("greedy", app("greedy", "64Mi"))
    await node.create_pod("modest", app("modest", "1Gi"))
    for name in ("greedy", "modest"):
        await node.wait_pod(name, lambda p: condition(p, "Ready") == "True")
    await use_memory(node, "greedy", "greedy", 300 * Mi)
    await use_memory(node, "modest", "modest", 200 * Mi)
    registered = await node.client.get("v1", "Node", NODE)
    assert node_condition(registered, "MemoryPressure")["status"] == "False"

    signals["memory.available"] = Observation(80 * Mi, 8 * Gi)
    greedy = await evicted_in_time(node, "greedy")
    status = greedy["status"]
    message = (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. "
        "Container greedy was using 300Mi, request is 64Mi, has larger consumption of memory. "
    )
    assert (status["reason"], status["message"]) == ("Evicted", message)
    disruption = next(c for c in status["conditions"] if c["type"] == "DisruptionTarget")
    assert (disruption["status"], disruption["reason"]) == ("True", "TerminationByKubelet")
    assert disruption["message"] == message
    (killed,) = await node.containers(greedy, "greedy")  # (the sandbox stops just after)
    assert killed.status.value != "running"
    # One pod per round: the other one is still running, the node reports the pressure.
    modest = await node.pod("modest")
    assert modest["status"]["phase"] == "Running"
    registered = await node.client.get("v1", "Node", NODE)
    pressure = node_condition(registered, "MemoryPressure")
    assert (pressure["status"], pressure["reason"]) == ("True", "KubeletHasInsufficientMemory")
    assert pressure["message"] == "recon node agent has insufficient memory available"

    async def events() -> set[tuple[str, str]]:
        listed = await node.client.list("v1", "Event", "default")
        return {(e["involvedObject"]["name"], e["reason"]) for e in listed.items}

    await node.eventually(
        lambda: _has(events(), {("greedy", "Evicted"), (NODE, "EvictionThresholdMet")}),
        what="Evicted and EvictionThresholdMet events",
    )

    # Pressure goes on: the next round (after the first pod is cleaned up) takes the other.
    await evicted_in_time(node, "modest")


async def _has(found: Awaitable[set[tuple[str, str]]], wanted: set[tuple[str, str]]) -> bool:
    return wanted <= await found


async def test_new_pods_are_refused_under_pressure_and_admitted_after(node: NodeHarness) -> None:
    signals = {"memory.available": Observation(50 * Mi, 8 * Gi)}
    await start_pressured_agent(node, signals, transition="30s")

    async def pressured() -> bool:
        registered = await node.client.get("v1", "Node", NODE)
        return bool(node_condition(registered, "MemoryPressure")["status"] == "True")

    await node.eventually(pressured, what="MemoryPressure on the Node")
    # Placed by name (no scheduler, no taint): the node's admission refuses BestEffort.
    await node.create_pod("walk-in", app("walk-in", nodeName=NODE))
    refused = await node.wait_pod(
        "walk-in", lambda p: (p.get("status") or {}).get("phase") == "Failed"
    )
    assert refused["status"]["reason"] == "Evicted"
    assert refused["status"]["message"] == (
        "Pod was rejected: The node had condition: [MemoryPressure]. "
    )
    assert not await node.containers(refused)

    # Relief: the condition holds for the transition period, then new pods run again.
    signals["memory.available"] = Observation(4 * Gi, 8 * Gi)
    await node.advance(20)
    assert await pressured()

    async def moved_and_relieved() -> bool:
        await node.advance(1)
        return not await pressured()

    await node.eventually(moved_and_relieved, timeout=15.0, what="MemoryPressure over")
    await node.create_pod("later", app("later", nodeName=NODE))
    await node.wait_pod("later", lambda p: condition(p, "Ready") == "True")
