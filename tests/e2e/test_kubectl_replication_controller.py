"""A v1 ReplicationController, as older tutorials write it (no selector: the API takes the
template's labels), with the real kubectl on Docker: its pods run and turn Ready, `kubectl
get rc` shows them, `kubectl scale rc` and a deleted pod are made good, and `kubectl delete
rc` takes the pods with it."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, new_namespace
from tests.e2e.support import BUSYBOX, wait_until

pytestmark = pytest.mark.e2e


def _rc(namespace: str) -> str:
    return f"""apiVersion: v1
kind: ReplicationController
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: 2
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
        - name: web
          image: {BUSYBOX}
          imagePullPolicy: IfNotPresent
          command: [sleep, "3600"]
"""


def _ready_pods(kubectl: Kubectl, ns: str) -> list[str]:
    pods = kubectl.json("-n", ns, "get", "pods", "-l", "app=web")["items"]
    return sorted(
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    )


def _pods(kubectl: Kubectl, ns: str) -> list[str]:
    return sorted(
        kubectl.run("-n", ns, "get", "pods", "-l", "app=web", "-o", "name").stdout.split()
    )


def test_replication_controller_runs_scales_replaces_and_cascades(
    docker_server: ReconServer,
) -> None:
    kubectl, ns = new_namespace(docker_server, "rc")
    kubectl.run("apply", "-f", "-", input=_rc(ns))
    wait_until(lambda: len(_ready_pods(kubectl, ns)) == 2, what="2 Ready pods", timeout=90)

    pod = kubectl.json("-n", ns, "get", "pods", "-l", "app=web")["items"][0]
    (ref,) = pod["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("ReplicationController", "web", True)

    def table() -> list[list[str]]:
        return [line.split() for line in kubectl.run("-n", ns, "get", "rc").stdout.splitlines()]

    header, web = wait_until(lambda: (t := table())[1][:4] == ["web", "2", "2", "2"] and t)
    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"] and len(web) == 5
    wide = kubectl.run("-n", ns, "get", "rc", "web", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["web", BUSYBOX, "app=web"]

    kubectl.run("-n", ns, "scale", "rc", "web", "--replicas=3")
    wait_until(lambda: len(_ready_pods(kubectl, ns)) == 3, what="scaled up to 3", timeout=90)

    before = _ready_pods(kubectl, ns)
    kubectl.run("-n", ns, "delete", "pod", before[0], "--wait=false")

    def replaced() -> bool:
        ready = _ready_pods(kubectl, ns)
        return len(ready) == 3 and before[0] not in ready

    wait_until(replaced, what="the deleted pod replaced", timeout=90)
    status = kubectl.json("-n", ns, "get", "rc", "web")["status"]
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (3, 3, 3)

    kubectl.run("-n", ns, "delete", "rc", "web")
    wait_until(lambda: _pods(kubectl, ns) == [], what="the pods deleted with their RC", timeout=90)
