"""Pod priority and preemption against `recon serve --runtime docker`, with the real kubectl.

Two pods of a Deployment of priority 0 take 80 % of the node's CPU (requests); a pod of a
PriorityClass asks for half of it: the scheduler evicts one of them (a Preempted event,
its container stopped), the important pod runs, and the Deployment's replacement for the
evicted pod waits (the room is the important pod's). A pod naming a class that does not
exist is refused as the apiserver refuses it."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import pytest

from reconciler.quantity import cpu_millis
from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e


def _manifests(namespace: str, low_millis: int, high_millis: int) -> str:
    return f"""apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {{name: {namespace}-high}}
value: 1000000
description: for the pod that matters
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: batch, namespace: {namespace}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: batch}}}}
  template:
    metadata: {{labels: {{app: batch}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: sleep
          image: recon.local/busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sleep", "3600"]
          resources: {{requests: {{cpu: {low_millis}m}}}}
"""


def _important(namespace: str, millis: int, priority_class: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: important, namespace: {namespace}}}
spec:
  priorityClassName: {priority_class}
  terminationGracePeriodSeconds: 1
  containers:
    - name: sleep
      image: recon.local/busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
      resources: {{requests: {{cpu: {millis}m}}}}
"""


def _pods(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    return list(kubectl.json("get", "pods", "-n", namespace)["items"])


def _running(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and not pod["metadata"].get(
        "deletionTimestamp"
    )


def _containers(pod_uid: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=recon.dev/pod-uid={pod_uid}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def test_a_priority_class_pod_preempts_lower_priority_pods(docker_server: ReconServer) -> None:
    kubectl = Kubectl(docker_server)
    namespace = f"prio-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl.run("create", "namespace", namespace)
    (node,) = kubectl.json("get", "nodes")["items"]
    allocatable = cpu_millis(node["status"]["allocatable"]["cpu"])
    low, high = allocatable * 2 // 5, allocatable // 2
    kubectl.run("apply", "-f", "-", input=_manifests(namespace, low, high))
    try:
        batch = wait_until(
            lambda: (
                len(running := [p for p in _pods(kubectl, namespace) if _running(p)]) == 2
                and running
            ),
            what="both batch pods running",
        )
        table = kubectl.run("get", "priorityclass").stdout.splitlines()
        assert table[0].split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
        rows = {line.split()[0]: line.split() for line in table[1:]}
        assert rows["system-node-critical"][1:3] == ["2000001000", "false"]
        assert rows[f"{namespace}-high"][1:3] == ["1000000", "false"]
        assert rows[f"{namespace}-high"][-1] == "PreemptLowerPriority"

        refused = kubectl.run(
            "apply", "-f", "-", input=_important(namespace, high, "no-such-class"), check=False
        )
        assert refused.returncode != 0
        assert (
            'pods "important" is forbidden: no PriorityClass with name no-such-class was found'
            in (refused.stderr)
        )

        kubectl.run("apply", "-f", "-", input=_important(namespace, high, f"{namespace}-high"))
        important = wait_until(
            lambda: _running(p := kubectl.json("get", "pod", "important", "-n", namespace)) and p,
            what="the important pod running",
        )
        assert important["spec"]["priority"] == 1000000
        assert _containers(important["metadata"]["uid"])

        def preempted() -> list[dict[str, Any]]:
            events = kubectl.json("get", "events", "-n", namespace)["items"]
            return [e for e in events if e.get("reason") == "Preempted"]

        (event,) = wait_until(preempted, what="a Preempted event")
        assert (
            event["message"]
            == f"Preempted by {namespace}/important on node {node['metadata']['name']}"
        )
        victim = event["involvedObject"]["name"]
        assert victim in {p["metadata"]["name"] for p in batch}
        survivor = next(p for p in batch if p["metadata"]["name"] != victim)
        # the victim's containers are stopped and removed with it; the survivor runs on
        victim_uid = next(p["metadata"]["uid"] for p in batch if p["metadata"]["name"] == victim)
        wait_until(lambda: not _containers(victim_uid), what="the victim's containers gone")
        assert _containers(survivor["metadata"]["uid"])

        # the Deployment's replacement waits: the room is the important pod's
        def replacement_waits() -> str:
            for p in _pods(kubectl, namespace):
                if p["metadata"]["name"] in {"important", survivor["metadata"]["name"]}:
                    continue
                for c in p.get("status", {}).get("conditions") or []:
                    if c["type"] == "PodScheduled" and c["status"] == "False":
                        return str(c["message"])
            return ""

        message = wait_until(replacement_waits, what="the replacement pending")
        assert message.startswith("0/1 nodes are available: 1 Insufficient cpu. preemption:")
        described = kubectl.run("describe", "pod", "important", "-n", namespace).stdout
        assert f"Priority Class Name:  {namespace}-high" in described
        wide = kubectl.run("get", "pod", "important", "-n", namespace, "-o", "wide").stdout
        assert "NOMINATED NODE" in wide.splitlines()[0]
    finally:
        kubectl.run("delete", "priorityclass", f"{namespace}-high", check=False)
