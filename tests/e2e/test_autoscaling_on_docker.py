"""`kubectl autoscale` on `recon serve --runtime docker`: a Deployment whose pod burns a
core against a 100m request is scaled up to its HPA's maximum from the pods' real CPU use,
and `kubectl get hpa` shows the measured utilization against the target."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, running_docker_server

pytestmark = pytest.mark.e2e


def _deployment(namespace: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: burn, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: burn}}}}
  template:
    metadata: {{labels: {{app: burn}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
        - name: main
          image: recon.local/busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "while :; do :; done"]
          resources: {{requests: {{cpu: 100m}}, limits: {{cpu: 200m}}}}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ReconServer]:
    with running_docker_server(tmp_path, "--metric-resolution", "1") as srv:
        yield srv


def test_autoscale_scales_a_busy_deployment_up_to_its_maximum(server: ReconServer) -> None:
    namespace = f"hpa-{uuid.uuid4().hex[:6]}"
    server.namespaces.append(namespace)
    kubectl = Kubectl(server)
    kubectl.run("create", "namespace", namespace)
    kubectl.run("apply", "-f", "-", input=_deployment(namespace))
    kubectl.run(
        "-n", namespace, "rollout", "status", "deployment/burn", "--timeout=60s"
    )  # fmt: skip
    out = kubectl.run(
        "-n", namespace, "autoscale", "deployment", "burn", "--cpu-percent=50", "--min=1",
        "--max=3",
    ).stdout  # fmt: skip
    assert "horizontalpodautoscaler.autoscaling/burn autoscaled" in out
    made = kubectl.json("-n", namespace, "get", "hpa.v2.autoscaling", "burn")
    assert made["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50},
            },
        }
    ]

    deadline = time.monotonic() + 90
    replicas = 0
    while time.monotonic() < deadline:
        deployment = kubectl.json("-n", namespace, "get", "deployment", "burn")
        replicas = deployment["spec"]["replicas"]
        if replicas == 3:
            break
        time.sleep(1)
    assert replicas == 3, kubectl.run("-n", namespace, "describe", "hpa", "burn").stdout

    hpa = kubectl.json("-n", namespace, "get", "hpa", "burn")
    status = hpa["status"]
    assert status["desiredReplicas"] == 3
    (current,) = status["currentMetrics"]
    # A busy loop capped at 200m against a 100m request: well above the 50% target.
    assert current["resource"]["name"] == "cpu"
    assert current["resource"]["current"]["averageUtilization"] > 100
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["ScalingLimited"]["status"] == "True"
    assert conditions["ScalingLimited"]["reason"] == "TooManyReplicas"
    row = kubectl.run("-n", namespace, "get", "hpa", "burn", "--no-headers").stdout.split()
    # NAME REFERENCE TARGETS(cpu: N%/50%) MINPODS MAXPODS REPLICAS AGE
    assert row[:2] == ["burn", "Deployment/burn"]
    assert "/50%" in " ".join(row[2:4])
    events = kubectl.run(
        "-n", namespace, "get", "events", "--field-selector", "reason=SuccessfulRescale"
    ).stdout  # fmt: skip
    assert (
        "New size: 3; reason: cpu resource utilization (percentage of request) above target"
        in (events)
        or "New size: 2; reason: cpu resource utilization" in events
    )
