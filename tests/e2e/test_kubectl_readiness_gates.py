"""Pod readiness gates with the real kubectl on Docker.

Load-balancer controllers (AWS, GKE NEG) hold a pod out of its Service until they have
registered it, through a readiness gate: the pod lists a condition type in
`spec.readinessGates`, its containers run and are ready (READY 1/1), but the pod's Ready
condition stays False, in the kubelet's words (reason ReadinessGatesNotReady), until the
controller writes that condition True through the status subresource. The node agent
rewrites the pod's status whenever its containers change, and must keep the condition it
does not own in every such write; a pod with no gate must keep such a condition too.

Each container's readiness probe reads a file, so `kubectl exec` can make the node write a
new status (ContainersReady False, then True again) at will, without sleeping.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, new_namespace
from tests.e2e.support import busybox_pod

pytestmark = pytest.mark.e2e

GATE = "example.com/feature-1"
AUDIT = "example.com/audited"


def probed_pod(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    """A pod whose container is ready while /tmp/ready exists (created at start)."""
    return busybox_pod(
        ns,
        name,
        ["sh", "-c", "touch /tmp/ready; exec sleep 3600"],
        {
            "readinessProbe": {
                "exec": {"command": ["cat", "/tmp/ready"]},
                "periodSeconds": 1,
                "failureThreshold": 1,
            }
        },
        **spec,
    )


def conditions(kubectl: Kubectl, ns: str, name: str) -> dict[str, dict[str, Any]]:
    pod = kubectl.json("-n", ns, "get", "pod", name)
    return {c["type"]: c for c in pod["status"].get("conditions") or []}


def wait(kubectl: Kubectl, ns: str, name: str, condition: str) -> None:
    kubectl.run(
        "-n", ns, "wait", f"--for=condition={condition}", f"pod/{name}", "--timeout=60s", timeout=70
    )


def columns(kubectl: Kubectl, ns: str, name: str) -> tuple[str, str, str]:
    """READY, STATUS and READINESS GATES of `kubectl get pod -o wide`."""
    row = kubectl.run("-n", ns, "get", "pod", name, "--no-headers", "-o", "wide").stdout.split()
    return row[1], row[2], row[-1]


def flip_containers(kubectl: Kubectl, ns: str, name: str) -> dict[str, dict[str, Any]]:
    """Make the node write two new statuses: containers unready, then ready again; the
    pod's conditions while its containers were unready."""
    kubectl.run("-n", ns, "exec", name, "--", "rm", "/tmp/ready")
    wait(kubectl, ns, name, "ContainersReady=false")
    unready = conditions(kubectl, ns, name)
    assert unready["Ready"]["status"] == "False"
    assert unready["Ready"]["reason"] == "ContainersNotReady"
    assert unready["Ready"]["message"] == "containers with unready status: [c]"
    kubectl.run("-n", ns, "exec", name, "--", "touch", "/tmp/ready")
    wait(kubectl, ns, name, "ContainersReady")
    return unready


def patch_status(kubectl: Kubectl, ns: str, pod: str, patch: Any, *options: str) -> None:
    """A write to the pod's status subresource, as a readiness gate's controller makes."""
    kubectl.run(
        "-n", ns, "patch", "pod", pod, "--subresource=status", *options, "-p", json.dumps(patch)
    )


def test_a_gate_holds_ready_back_until_its_condition_is_true(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "gates")
    pods = [probed_pod(ns, "gated", readinessGates=[{"conditionType": GATE}])]
    pods.append(probed_pod(ns, "plain"))
    kubectl.run(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": pods})
    )

    # containers ready, the pod not: no condition for the gate yet
    wait(kubectl, ns, "gated", "ContainersReady")
    found = conditions(kubectl, ns, "gated")
    assert found["Ready"]["status"] == "False"
    assert found["Ready"]["reason"] == "ReadinessGatesNotReady"
    assert found["Ready"]["message"] == (
        f'corresponding condition of pod readiness gate "{GATE}" does not exist.'
    )
    assert GATE not in found
    assert columns(kubectl, ns, "gated") == ("1/1", "Running", "0/1")

    # the controller's write through the status subresource (a strategic merge patch:
    # conditions merge by type)
    written = {"type": GATE, "status": "True"}
    patch_status(kubectl, ns, "gated", {"status": {"conditions": [written]}})
    wait(kubectl, ns, "gated", "Ready")
    found = conditions(kubectl, ns, "gated")
    assert found[GATE] == written
    assert "reason" not in found["Ready"]
    assert columns(kubectl, ns, "gated") == ("1/1", "Running", "1/1")

    # the node writes the pod's status again, twice: the gate's condition stays as written
    unready = flip_containers(kubectl, ns, "gated")
    assert unready[GATE] == written
    wait(kubectl, ns, "gated", "Ready")
    assert conditions(kubectl, ns, "gated")[GATE] == written

    # the controller takes it back (a JSON patch at the condition's index)
    pod = kubectl.json("-n", ns, "get", "pod", "gated")
    index = [c["type"] for c in pod["status"]["conditions"]].index(GATE)
    unset = [
        {"op": "test", "path": f"/status/conditions/{index}/type", "value": GATE},
        {"op": "replace", "path": f"/status/conditions/{index}/status", "value": "False"},
    ]
    patch_status(kubectl, ns, "gated", unset, "--type=json")
    wait(kubectl, ns, "gated", "Ready=false")
    found = conditions(kubectl, ns, "gated")
    assert found["Ready"]["reason"] == "ReadinessGatesNotReady"
    assert found["Ready"]["message"] == (
        f'the status of pod readiness gate "{GATE}" is not "True", but False'
    )
    assert found["ContainersReady"]["status"] == "True"
    assert found[GATE] == {"type": GATE, "status": "False"}
    assert columns(kubectl, ns, "gated") == ("1/1", "Running", "0/1")

    # a pod without gates, Ready, keeps a condition someone else wrote
    wait(kubectl, ns, "plain", "Ready")
    audit = {"type": AUDIT, "status": "True", "reason": "Checked", "message": "by the e2e test"}
    add = [{"op": "add", "path": "/status/conditions/-", "value": audit}]
    kubectl.run(
        "-n",
        ns,
        "patch",
        "pod",
        "plain",
        "--subresource=status",
        "--type=json",
        "-p",
        json.dumps(add),
    )
    assert conditions(kubectl, ns, "plain")[AUDIT] == audit
    unready = flip_containers(kubectl, ns, "plain")
    assert unready[AUDIT] == audit
    wait(kubectl, ns, "plain", "Ready")
    found = conditions(kubectl, ns, "plain")
    assert found[AUDIT] == audit
    assert "reason" not in found["Ready"]
    assert columns(kubectl, ns, "plain") == ("1/1", "Running", "<none>")
