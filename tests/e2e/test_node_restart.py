"""`kill -9` of `recon serve` with pods running: the restarted server re-adopts them."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e


def _containers(agent_label: str) -> dict[str, str]:
    """Running pod containers of this server (not its Service gateways): name -> id."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "--filter",
            f"label={agent_label}",
            "--filter",
            "label=recon.dev/pod-uid",
            "--format",
            "{{.Names}} {{.ID}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out: {what}")


def test_kill_9_readopts_running_pods_and_removes_deleted_ones(
    docker_server: ReconServer,
) -> None:
    from reconciler.embedded import agent_id_for

    namespace = f"e2e-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    for i in range(5):
        kubectl.run(
            "-n", namespace, "run", f"p{i}", "--image=recon.local/busybox:latest",
            "--image-pull-policy=IfNotPresent", "--", "sleep", "3600",
        )  # fmt: skip
    kubectl.run(
        "-n", namespace, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=60s"
    )  # fmt: skip
    label = f"recon.dev/agent={agent_id_for(docker_server.data_dir.resolve())}"
    before = _containers(label)
    assert len(before) == 10, before  # 5 sandboxes + 5 containers

    docker_server.kill9()
    # While the server is down nothing changes on the engine.
    assert _containers(label) == before
    docker_server.start()
    kubectl.run("-n", namespace, "delete", "pod", "p4", "--grace-period=1", "--wait=false")
    kubectl.run(
        "-n", namespace, "wait", "--for=condition=Ready", "pod", "p0", "p1", "p2", "p3",
        "--timeout=60s",
    )  # fmt: skip
    _wait(lambda: len(_containers(label)) == 8, 30, "p4's two containers removed")
    after = _containers(label)
    assert set(after.items()) <= set(before.items()), "the same containers, none new"
    pods = json.loads(kubectl.run("-n", namespace, "get", "pods", "-o", "json").stdout)["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["p0", "p1", "p2", "p3"]
    assert all(p["status"]["containerStatuses"][0]["restartCount"] == 0 for p in pods)

    # A pod deleted while the node agent was down (the state changed by a server running
    # without a node on the same data) has its containers removed at the next start.
    docker_server.kill9()
    no_node = ReconServer(docker_server.data_dir, docker_server.port, runtime="none")
    no_node.start()
    try:
        Kubectl(no_node).run(
            "-n", namespace, "delete", "pod", "p3", "--grace-period=0", "--force"
        )  # fmt: skip
    finally:
        no_node.stop()
    assert len(_containers(label)) == 8
    docker_server.start()
    _wait(lambda: len(_containers(label)) == 6, 30, "p3's containers removed")
