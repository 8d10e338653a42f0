"""Pod topology spread with the real kubectl on Docker, on the server's one node.

Charts spread replicas with `topologySpreadConstraints` over a zone key that a one-node
cluster usually lacks: a `DoNotSchedule` constraint must then keep the pod Pending with
kube-scheduler's words (the node is missing the key: no preemption can help), in the
PodScheduled condition and a FailedScheduling event, until the node is labelled, when the
pod is placed and runs; a `ScheduleAnyway` constraint only ranks nodes and never holds a pod
back. With `minDomains` above the number of zones, a second matching pod is refused for the
skew it would make, while a pod the constraint's selector does not count still fits.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, new_namespace
from tests.e2e.support import busybox_pod, wait_until

pytestmark = pytest.mark.e2e

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
MISSING_LABEL = (
    "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints "
    "(missing required label). preemption: 0/1 nodes are available: 1 Preemption is not "
    "helpful for scheduling"
)  # upstream ends it with one or two full stops, depending on the version
SKEWED = "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints."


def spread_pod(
    ns: str, name: str, app: str, when: str, key: str = ZONE, **constraint: Any
) -> dict[str, Any]:
    pod = busybox_pod(
        ns,
        name,
        ["sleep", "3600"],
        topologySpreadConstraints=[
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": when,
                "labelSelector": {"matchLabels": {"app": app}},
                **constraint,
            }
        ],
    )
    pod["metadata"]["labels"] = {"app": app}
    return pod


def apply(kubectl: Kubectl, *objects: dict[str, Any]) -> None:
    kubectl.run(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
    )


def wait_ready(kubectl: Kubectl, ns: str, *names: str) -> None:
    pods = [f"pod/{n}" for n in names]
    kubectl.run("-n", ns, "wait", "--for=condition=Ready", *pods, "--timeout=60s", timeout=70)


def unschedulable_message(kubectl: Kubectl, ns: str, name: str) -> str:
    """The message of the pod's PodScheduled=False condition once the scheduler wrote it."""

    def written() -> str:
        pod = kubectl.json("-n", ns, "get", "pod", name)
        for condition in pod.get("status", {}).get("conditions") or []:
            if condition["type"] == "PodScheduled" and condition.get("reason") == "Unschedulable":
                assert condition["status"] == "False"
                return str(condition["message"])
        return ""

    message: str = wait_until(written, what=f"{name} refused by the scheduler")
    return message


def events(kubectl: Kubectl, ns: str, name: str, reason: str) -> list[str]:
    found = kubectl.json("-n", ns, "get", "events")["items"]
    return [
        str(e["message"])
        for e in found
        if e["involvedObject"]["name"] == name and e["reason"] == reason
    ]


def test_a_pod_waits_for_its_topology_key_and_scheduleanyway_never_waits(
    docker_server: ReconServer,
) -> None:
    kubectl, ns = new_namespace(docker_server, "spread")
    (node,) = kubectl.json("get", "nodes")["items"]
    node_name = node["metadata"]["name"]
    assert ZONE not in node["metadata"]["labels"]

    apply(
        kubectl,
        spread_pod(ns, "zoned", "web", "DoNotSchedule"),
        spread_pod(ns, "anyway", "batch", "ScheduleAnyway"),
    )
    wait_ready(kubectl, ns, "anyway")
    assert kubectl.json("-n", ns, "get", "pod", "anyway")["spec"]["nodeName"] == node_name

    message = unschedulable_message(kubectl, ns, "zoned")
    assert message.startswith(MISSING_LABEL), message
    assert message.rstrip(".") == MISSING_LABEL
    row = kubectl.run("-n", ns, "get", "pod", "zoned", "--no-headers", "-o", "wide").stdout
    (_, ready, status, _, _, _, where, *_) = row.split()
    assert (ready, status, where) == ("0/1", "Pending", "<none>")
    assert wait_until(
        lambda: events(kubectl, ns, "zoned", "FailedScheduling"), what="FailedScheduling"
    ) == [message]

    # the zone key on the node: the waiting pod is tried again, placed and started
    kubectl.run("label", "node", node_name, f"{ZONE}=z1")
    wait_ready(kubectl, ns, "zoned")
    assert kubectl.json("-n", ns, "get", "pod", "zoned")["spec"]["nodeName"] == node_name
    assert events(kubectl, ns, "zoned", "Scheduled") == [
        f"Successfully assigned {ns}/zoned to {node_name}"
    ]

    # two zones wanted, one known: the emptiest counts as 0, so a second "web" pod would
    # make a skew of 2; an "api" pod is counted alone (skew 1) and fits
    apply(
        kubectl,
        spread_pod(ns, "crowded", "web", "DoNotSchedule", minDomains=2),
        spread_pod(ns, "alone", "api", "DoNotSchedule", minDomains=2),
    )
    wait_ready(kubectl, ns, "alone")
    skewed = unschedulable_message(kubectl, ns, "crowded")
    assert skewed.startswith(SKEWED + " preemption: "), skewed
    assert not kubectl.json("-n", ns, "get", "pod", "crowded")["spec"].get("nodeName")
    phases = {
        p["metadata"]["name"]: p["status"]["phase"]
        for p in kubectl.json("-n", ns, "get", "pods")["items"]
    }
    assert phases == {
        "anyway": "Running",
        "zoned": "Running",
        "alone": "Running",
        "crowded": "Pending",
    }


def test_a_skew_refusal_names_the_missing_preemption_victims(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "skew")
    first = spread_pod(ns, "first", "web", "DoNotSchedule", key=HOST, minDomains=2)
    apply(kubectl, first)
    wait_ready(kubectl, ns, "first")
    apply(kubectl, spread_pod(ns, "second", "web", "DoNotSchedule", key=HOST, minDomains=2))
    message = unschedulable_message(kubectl, ns, "second")
    assert message.startswith(
        SKEWED + " preemption: 0/1 nodes are available: 1 No preemption victims found for "
        "incoming pod."
    ), message
