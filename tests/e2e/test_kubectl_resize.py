"""In-place pod resize with the real kubectl on Docker: `kubectl patch --subresource resize`
gives the running container more CPU without restarting it (the engine's limit follows), and
a resize that would change the pod's QoS class is refused in upstream's words."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e.conftest import ReconServer, new_namespace
from tests.e2e.support import busybox_pod, wait_until

pytestmark = pytest.mark.e2e


def _nano_cpus(container_id: str) -> int:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.HostConfig.NanoCpus}}", container_id],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def test_resize_in_place_and_refuse_a_qos_change(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "resize")
    resources = {
        "requests": {"cpu": "100m", "memory": "16Mi"},
        "limits": {"cpu": "200m", "memory": "32Mi"},
    }
    pod = busybox_pod(ns, "app", ["sleep", "3600"], {"resources": resources})
    kubectl.run("apply", "-f", "-", input=json.dumps(pod))
    kubectl.run("-n", ns, "wait", "--for=condition=Ready", "pod/app", "--timeout=60s", timeout=70)
    before = kubectl.json("-n", ns, "get", "pod", "app")["status"]["containerStatuses"][0]
    container_id = before["containerID"].removeprefix("docker://")
    assert _nano_cpus(container_id) == 200_000_000

    patch = {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "400m"}}}]}}
    out = kubectl.run(
        "-n", ns, "patch", "pod", "app", "--subresource", "resize", "-p", json.dumps(patch)
    )
    assert "pod/app patched" in out.stdout
    wait_until(lambda: _nano_cpus(container_id) == 400_000_000, what="the engine's CPU limit")
    after = kubectl.json("-n", ns, "get", "pod", "app")
    assert after["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "400m"
    status = after["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0 and status["containerID"] == before["containerID"]

    same = {"cpu": "400m", "memory": "32Mi"}
    guaranteed = {"spec": {"containers": [{"name": "c", "resources": {"requests": same}}]}}
    refused = kubectl.run(
        "-n",
        ns,
        "patch",
        "pod",
        "app",
        "--subresource",
        "resize",
        "-p",
        json.dumps(guaranteed),
        check=False,
    )
    assert refused.returncode != 0
    assert (
        'spec: Invalid value: "Burstable": Pod QOS Class may not change as a result of resizing'
        in refused.stderr
    )
