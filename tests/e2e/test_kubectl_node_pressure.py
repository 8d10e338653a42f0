"""Node-pressure eviction with the real kubectl on Docker.

The server is started with a threshold this host always meets (`memory.available<100%`:
less is available than the machine has), measured every second. Then, as on a node short
of memory: the Node reports MemoryPressure and carries the memory-pressure taint; a pod
without a toleration stays Pending; a pod that tolerates it is scheduled and evicted
(Failed, Evicted, the kubelet's message, DisruptionTarget); a BestEffort pod placed on the
node by name is refused by the node's admission."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, new_namespace, running_docker_server
from tests.e2e.support import busybox_pod, wait_until

pytestmark = pytest.mark.e2e

TAINT = "node.kubernetes.io/memory-pressure"


@pytest.fixture
def pressured(tmp_path: Path) -> Iterator[ReconServer]:
    with running_docker_server(
        tmp_path,
        "--eviction-hard",
        "memory.available<100%",
        "--eviction-pressure-transition-period",
        "0s",
        "--housekeeping-interval",
        "1s",
    ) as srv:
        yield srv


def the_node(kubectl: Kubectl) -> dict[str, Any]:
    (node,) = kubectl.json("get", "nodes")["items"]
    return dict(node)


def pressure_and_taint(kubectl: Kubectl) -> bool:
    node = the_node(kubectl)
    conditions = {c["type"]: c for c in node["status"]["conditions"]}
    taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
    return conditions["MemoryPressure"]["status"] == "True" and (TAINT, "NoSchedule") in taints


def test_a_node_short_of_memory_taints_evicts_and_refuses(pressured: ReconServer) -> None:
    kubectl, ns = new_namespace(pressured, "pressure")
    wait_until(lambda: pressure_and_taint(kubectl), 30, "MemoryPressure and its taint")
    node = the_node(kubectl)
    memory = next(c for c in node["status"]["conditions"] if c["type"] == "MemoryPressure")
    assert memory["reason"] == "KubeletHasInsufficientMemory"
    assert node["status"]["conditions"][-1]["type"] == "Ready"

    # No toleration: the scheduler keeps it off the tainted node.
    plain = busybox_pod(ns, "plain", ["sleep", "3600"])
    kubectl.run("apply", "-f", "-", input=json.dumps(plain))
    kubectl.run(
        "-n", ns, "wait", "--for=condition=PodScheduled=False", "pod/plain", "--timeout=30s"
    )
    scheduled = next(
        c
        for c in kubectl.json("-n", ns, "get", "pod", "plain")["status"]["conditions"]
        if c["type"] == "PodScheduled"
    )
    assert f"untolerated taint {{{TAINT}: }}" in scheduled["message"]

    # Tolerating, with a memory request: scheduled and admitted, then evicted.
    tolerant = busybox_pod(
        ns,
        "tolerant",
        ["sleep", "3600"],
        {"resources": {"requests": {"memory": "16Mi"}}},
        tolerations=[{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}],
    )
    kubectl.run("apply", "-f", "-", input=json.dumps(tolerant))
    kubectl.run(
        "-n",
        ns,
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "pod/tolerant",
        "--timeout=60s",
        timeout=70,
    )
    status = kubectl.json("-n", ns, "get", "pod", "tolerant")["status"]
    assert status["reason"] == "Evicted"
    assert status["message"].startswith(
        "The node was low on resource: memory. Threshold quantity: "
    )
    disruption = next(c for c in status["conditions"] if c["type"] == "DisruptionTarget")
    assert (disruption["reason"], disruption["message"]) == (
        "TerminationByKubelet",
        status["message"],
    )
    (container,) = status["containerStatuses"]
    assert "running" not in container["state"]
    events = kubectl.json("-n", ns, "get", "events", "--field-selector", "reason=Evicted")
    assert any(e["involvedObject"]["name"] == "tolerant" for e in events["items"])

    # Placed on the node by name, past the scheduler: BestEffort is refused at admission.
    walk_in = busybox_pod(ns, "walk-in", ["sleep", "3600"], nodeName=node["metadata"]["name"])
    kubectl.run("apply", "-f", "-", input=json.dumps(walk_in))
    kubectl.run(
        "-n",
        ns,
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "pod/walk-in",
        "--timeout=30s",
    )
    refused = kubectl.json("-n", ns, "get", "pod", "walk-in")["status"]
    assert (refused["reason"], refused["message"]) == (
        "Evicted",
        "Pod was rejected: The node had condition: [MemoryPressure]. ",
    )
    assert not refused.get("containerStatuses")
