"""Scheduling gates with the real kubectl: a gated pod shows STATUS SchedulingGated and is
not placed; once its gates are removed the scheduler takes it up."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e


def test_a_gated_pod_waits_for_its_gates(server: ReconServer, kubectl: Kubectl) -> None:
    ns = f"gates-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", ns)
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": ns},
            "spec": {
                "schedulingGates": [{"name": "example.com/quota-check"}],
                "containers": [{"name": "c", "image": "busybox"}],
            },
        }
        kubectl.run("apply", "-f", "-", input=json.dumps(pod))

        def status() -> str:
            row = kubectl.run("-n", ns, "get", "pod", "p", "--no-headers").stdout.split()
            return row[2] if len(row) > 2 else ""

        assert wait_until(lambda: status() == "SchedulingGated" and status(), what="gated")
        assert not kubectl.json("-n", ns, "get", "pod", "p")["spec"].get("nodeName")
        remove = json.dumps([{"op": "remove", "path": "/spec/schedulingGates"}])
        kubectl.run("-n", ns, "patch", "pod", "p", "--type=json", "-p", remove)

        def reason() -> str:
            conditions = kubectl.json("-n", ns, "get", "pod", "p")["status"]["conditions"]
            scheduled = [c for c in conditions if c["type"] == "PodScheduled"]
            return str(scheduled[0].get("reason") or "placed") if scheduled else ""

        # taken up: placed, or refused for a scheduler's reason, no longer gated
        assert wait_until(lambda: reason() not in ("", "SchedulingGated") and reason())
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
