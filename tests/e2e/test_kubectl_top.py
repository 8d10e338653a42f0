"""`kubectl top` against `recon serve --runtime docker`: the resource metrics API answers
with what the pods' cgroups really used (a busy loop near a core, an idle pod near zero)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.quantity import cpu_millis, memory_bytes
from tests.e2e.conftest import Kubectl, ReconServer, running_docker_server

pytestmark = pytest.mark.e2e


def _pods(namespace: str) -> str:
    def pod(name: str, app: str, script: str) -> str:
        return f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}, labels: {{app: {app}}}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: main
      image: recon.local/busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "{script}"]
      resources: {{requests: {{cpu: 100m, memory: 16Mi}}}}
"""

    return pod("busy", "burn", "while :; do :; done") + pod("idle", "rest", IDLE)


# Holds about 20 MiB in a shell variable, then sleeps (in a loop: busybox sh would exec a
# last command, dropping the variable): measurable memory, no CPU.
IDLE = "x=$(head -c 20000000 /dev/zero | tr '\\\\0' a); while :; do sleep 3600; done"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ReconServer]:
    with running_docker_server(tmp_path, "--metric-resolution", "1") as srv:
        yield srv


def _top(kubectl: Kubectl, *args: str) -> list[list[str]] | None:
    result = kubectl.run("top", *args, "--no-headers", check=False)
    if result.returncode != 0:
        return None
    return [line.split() for line in result.stdout.splitlines() if line.strip()]


def test_kubectl_top_pods_and_node(server: ReconServer) -> None:
    namespace = f"top-{uuid.uuid4().hex[:6]}"
    server.namespaces.append(namespace)
    kubectl = Kubectl(server)
    kubectl.run("create", "namespace", namespace)
    kubectl.run("apply", "-f", "-", input=_pods(namespace))
    kubectl.run(
        "-n", namespace, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=60s"
    )  # fmt: skip
    deadline = time.monotonic() + 30
    rows: list[list[str]] | None = None
    while time.monotonic() < deadline:
        rows = _top(kubectl, "pod", "-n", namespace)
        settled = rows and len(rows) == 2 and memory_bytes(rows[1][2]) > 10 * 2**20
        if settled and cpu_millis(rows[0][1]) > 200 and cpu_millis(rows[1][1]) < 50:
            break
        time.sleep(0.5)
    assert rows is not None and [r[0] for r in rows] == ["busy", "idle"], rows
    busy, idle = rows
    assert cpu_millis(busy[1]) > 200, rows  # a busy loop on a shared 2-core machine
    assert cpu_millis(idle[1]) < 50, rows
    assert 10 * 2**20 < memory_bytes(idle[2]) < 200 * 2**20, rows

    selected = _top(kubectl, "pod", "-n", namespace, "-l", "app=rest", "--containers")
    assert selected is not None and len(selected) == 1
    assert selected[0][:2] == ["idle", "main"]

    node = _top(kubectl, "node")
    assert node is not None and len(node) == 1
    _name, cpu, cpu_percent, memory, memory_percent = node[0]
    assert cpu_millis(cpu) > 200 and cpu_percent.endswith("%") and memory_percent.endswith("%")
    assert memory_bytes(memory) > 0

    missing = kubectl.run("top", "pod", "nope", "-n", namespace, check=False)
    assert missing.returncode != 0
    assert f'podmetrics.metrics.k8s.io "{namespace}/nope" not found' in missing.stderr
