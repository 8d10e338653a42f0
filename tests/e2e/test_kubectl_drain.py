"""`kubectl drain` against `recon serve --runtime docker`: evictions through `pods/eviction`
honour a PodDisruptionBudget kept current by the disruption controller.

On one node, a drained node's pods cannot be rescheduled while it is cordoned, so with
`minAvailable: 2` over 3 replicas exactly one pod may go: drain evicts it, is refused with
kubectl's retry messages for the others until its timeout, and after `kubectl uncordon`
the replacement runs. Without a budget, drain evicts everything it may (a bare pod only
with `--force`, as kubectl says)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


def _deployment(namespace: str, replicas: int) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: sleep
          image: recon.local/busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sleep", "3600"]
"""


def _budget(namespace: str) -> str:
    return f"""apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: {namespace}}}
spec:
  minAvailable: 2
  selector: {{matchLabels: {{app: web}}}}
"""


def _pods(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    return list(kubectl.json("get", "pods", "-n", namespace)["items"])


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _ready_names(kubectl: Kubectl, namespace: str) -> set[str]:
    return {
        p["metadata"]["name"]
        for p in _pods(kubectl, namespace)
        if _ready(p) and not p["metadata"].get("deletionTimestamp")
    }


def _setup(server: ReconServer) -> tuple[Kubectl, str, str]:
    kubectl = Kubectl(server)
    namespace = f"drain-{uuid.uuid4().hex[:6]}"
    server.namespaces.append(namespace)
    kubectl.run("create", "namespace", namespace)
    (node,) = kubectl.run("get", "nodes", "-o", "name").stdout.split()
    return kubectl, namespace, node.removeprefix("node/")


def _pdb(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return dict(kubectl.json("get", "pdb", "web", "-n", namespace).get("status") or {})


def test_drain_respects_the_budget_and_uncordon_lets_replacements_run(
    docker_server: ReconServer,
) -> None:
    kubectl, namespace, node = _setup(docker_server)
    kubectl.run("apply", "-f", "-", input=_deployment(namespace, 3) + "---\n" + _budget(namespace))
    original = wait_until(
        lambda: (names := _ready_names(kubectl, namespace)) and len(names) == 3 and names,
        what="3 ready pods",
    )
    wait_until(lambda: _pdb(kubectl, namespace).get("disruptionsAllowed") == 1, what="1 allowed")
    table = kubectl.run("get", "pdb", "-n", namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]
    assert table[1].split()[:4] == ["web", "2", "N/A", "1"]

    # A server-side dry run evicts every pod in words only: the budget is not spent.
    dry = kubectl.run("drain", node, "--ignore-daemonsets", "--dry-run=server", timeout=60)
    assert dry.stdout.count("(server dry run)\n") == 5, dry.stdout  # cordon, 3 pods, drained
    assert f"node/{node} drained (server dry run)" in dry.stdout
    assert _ready_names(kubectl, namespace) == original
    assert _pdb(kubectl, namespace)["disruptionsAllowed"] == 1
    assert not kubectl.json("get", "node", node)["spec"].get("unschedulable")

    drain = kubectl.run(
        "drain",
        node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=20s",
        check=False,
        timeout=120,
    )
    assert drain.returncode != 0, drain.stdout
    assert f"node/{node} cordoned" in drain.stdout
    assert REFUSED in drain.stderr and "(will retry after 5s)" in drain.stderr
    assert "global timeout reached: 20s" in drain.stderr
    evicted = [line for line in drain.stdout.splitlines() if line.endswith(" evicted")]
    assert len(evicted) == 1, drain.stdout

    # One original pod went; its replacement waits, unscheduled, for the cordoned node.
    assert kubectl.json("get", "node", node)["spec"]["unschedulable"] is True
    pods = _pods(kubectl, namespace)
    left = {p["metadata"]["name"] for p in pods} & original
    assert len(left) == 2 and _ready_names(kubectl, namespace) == left
    (waiting,) = [p for p in pods if p["metadata"]["name"] not in original]
    assert not waiting["spec"].get("nodeName") and waiting["status"]["phase"] == "Pending"
    status = _pdb(kubectl, namespace)
    assert status["disruptionsAllowed"] == 0 and status["currentHealthy"] == 2

    kubectl.run("uncordon", node)
    wait_until(
        lambda: waiting["metadata"]["name"] in _ready_names(kubectl, namespace),
        what="the replacement scheduled and ready after uncordon",
    )
    wait_until(
        lambda: _pdb(kubectl, namespace).get("disruptionsAllowed") == 1,
        what="the budget has room again",
    )


def test_drain_without_a_budget_evicts_everything_bare_pods_only_with_force(
    docker_server: ReconServer,
) -> None:
    kubectl, namespace, node = _setup(docker_server)
    kubectl.run("apply", "-f", "-", input=_deployment(namespace, 2))
    kubectl.run(
        "run",
        "bare",
        "-n",
        namespace,
        "--image=recon.local/busybox:latest",
        "--image-pull-policy=IfNotPresent",
        "--overrides",
        json.dumps({"spec": {"terminationGracePeriodSeconds": 2}}),
        "--",
        "sleep",
        "3600",
    )
    original = wait_until(
        lambda: (names := _ready_names(kubectl, namespace)) and len(names) == 3 and names,
        what="3 ready pods",
    )

    refused = kubectl.run("drain", node, "--ignore-daemonsets", "--timeout=60s", check=False)
    assert refused.returncode != 0
    assert "use --force to override" in refused.stderr and f"{namespace}/bare" in refused.stderr
    assert _ready_names(kubectl, namespace) == original  # nothing was evicted

    drained = kubectl.run(
        "drain", node, "--ignore-daemonsets", "--force", "--timeout=60s", timeout=120
    )
    assert f"node/{node} drained" in drained.stdout
    assert len([line for line in drained.stdout.splitlines() if line.endswith(" evicted")]) == 3
    pods = _pods(kubectl, namespace)
    assert not {p["metadata"]["name"] for p in pods} & original
    # The Deployment's replacements wait for a schedulable node; the bare pod is gone.
    assert len(pods) == 2 and all(not p["spec"].get("nodeName") for p in pods)
    kubectl.run("uncordon", node)
    wait_until(lambda: len(_ready_names(kubectl, namespace)) == 2, what="replacements running")
