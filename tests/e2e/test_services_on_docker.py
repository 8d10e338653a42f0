"""A NodePort Service on `recon serve --runtime docker`: 127.0.0.1:<nodePort> reaches the
ready pods behind it, balanced across them, and only the ready ones."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e


def _get(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return str(response.read().decode().strip())
    except (urllib.error.URLError, OSError):
        return None


def _manifest(namespace: str) -> str:
    pods = "".join(
        f"""
---
apiVersion: v1
kind: Pod
metadata: {{name: web-{i}, namespace: {namespace}, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: httpd
      image: recon.local/busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "echo web-{i} > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
      ports: [{{containerPort: 8080}}]
      readinessProbe:
        httpGet: {{path: /index.html, port: 8080}}
        periodSeconds: 1
"""
        for i in range(2)
    )
    return (
        f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {namespace}}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""
        + pods
    )


def test_node_port_balances_across_ready_pods(docker_server: ReconServer) -> None:
    namespace = f"svc-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    kubectl.run("apply", "-f", "-", input=_manifest(namespace))
    kubectl.run(
        "-n", namespace, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=60s"
    )  # fmt: skip
    service = kubectl.json("-n", namespace, "get", "service", "web")
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767 and service["spec"]["clusterIP"].startswith("10.")
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while seen != {"web-0", "web-1"} and time.monotonic() < deadline:
        answer = _get(node_port)
        if answer:
            seen.add(answer)
        time.sleep(0.05)
    assert seen == {"web-0", "web-1"}
    # web-1 stops being ready: only web-0 answers.
    kubectl.run("-n", namespace, "exec", "web-1", "--", "rm", "/tmp/index.html", check=False)
    pod = "pod/web-1"
    kubectl.run(
        "-n", namespace, "wait", "--for=condition=Ready=false", pod, "--timeout=30s"
    )  # fmt: skip
    time.sleep(1)
    answers = {_get(node_port) for _ in range(10)}
    assert answers == {"web-0"}
