"""Pods reach Services by name and cluster IP on `recon serve --runtime docker`: `web`,
`web.NS`, `web.NS.svc.cluster.local`, `$WEB_SERVICE_HOST`, from another namespace, through
an ExternalName; only ready pods answer; StatefulSet-style pods have stable names."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e

IMAGE = "recon.local/busybox:latest"


def _web(namespace: str) -> str:
    pods = "".join(
        f"""
---
apiVersion: v1
kind: Pod
metadata: {{name: web-{i}, namespace: {namespace}, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  hostname: web-{i}
  subdomain: crew
  containers:
    - name: httpd
      image: {IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "echo web-{i} > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
      ports: [{{name: http, containerPort: 8080}}]
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
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: crew, namespace: {namespace}}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext, namespace: {namespace}}}
spec:
  type: ExternalName
  externalName: web.{namespace}.svc.cluster.local
  ports: [{{port: 80}}]
"""
        + pods
    )


def _client(name: str, namespace: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: sh
      image: {IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
"""


def _fetch(kubectl: Kubectl, namespace: str, pod: str, url: str, times: int = 1) -> list[str]:
    """GET `url` (shell-expanded in the pod) `times` times from inside `pod`."""
    script = f'for i in $(seq {times}); do wget -qO- "{url}" || echo FAILED; done'
    out = kubectl.run("-n", namespace, "exec", pod, "--", "sh", "-c", script, timeout=60)
    return out.stdout.split()


def _settled(kubectl: Kubectl, namespace: str, pod: str, url: str, expected: set[str]) -> set[str]:
    """The answers once routing has caught up with the endpoints (a gateway and its
    backends follow the Endpoints object a moment later, as kube-proxy does), then a steady
    batch in which every request must get one of `expected`."""
    deadline = time.monotonic() + 30
    seen: set[str] = set()
    while time.monotonic() < deadline and seen != expected:
        seen = set(_fetch(kubectl, namespace, pod, url, times=6))
    return set(_fetch(kubectl, namespace, pod, url, times=12))


def test_pods_reach_services_by_name_and_cluster_ip(docker_server: ReconServer) -> None:
    kubectl = Kubectl(docker_server)
    here, there = (f"names-{uuid.uuid4().hex[:6]}" for _ in range(2))
    docker_server.namespaces.extend([here, there])
    for namespace in (here, there):
        kubectl.run("create", "namespace", namespace)
    kubectl.run("apply", "-f", "-", input=_web(here))
    kubectl.run("apply", "-f", "-", input=_client("client", here))
    kubectl.run("apply", "-f", "-", input=_client("visitor", there))
    for namespace in (here, there):
        kubectl.run(
            "-n", namespace, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=90s"
        )  # fmt: skip
    cluster_ip = kubectl.json("-n", here, "get", "service", "web")["spec"]["clusterIP"]
    both = {"web-0", "web-1"}

    for name in ("web", f"web.{here}", f"web.{here}.svc.cluster.local", cluster_ip):
        answers = _settled(kubectl, here, "client", f"http://{name}/index.html", both)
        assert answers == both, (name, answers)
    # The classic variables of a Service that existed when the pod started.
    answers = set(
        _fetch(kubectl, here, "client", "http://$WEB_SERVICE_HOST:$WEB_SERVICE_PORT/index.html")
    )
    assert answers <= both and answers, answers
    # From another namespace: the namespace-qualified name and the cluster IP.
    for name in (f"web.{here}", cluster_ip):
        assert set(_fetch(kubectl, there, "visitor", f"http://{name}/index.html", 6)) <= both
    # ExternalName is a CNAME to the name it points at (the cluster DNS); a headless
    # Service's pods have stable names of their own (hostname.subdomain).
    assert set(_fetch(kubectl, here, "client", "http://ext/index.html", 4)) <= both
    assert _fetch(kubectl, here, "client", "http://web-1.crew:8080/index.html") == ["web-1"]
    fqdn = kubectl.run("-n", here, "exec", "web-1", "--", "hostname", "-f").stdout.strip()
    assert fqdn == f"web-1.crew.{here}.svc.cluster.local"

    # web-1 stops being ready: only web-0 answers, by name and by cluster IP.
    kubectl.run("-n", here, "exec", "web-1", "--", "rm", "/tmp/index.html")
    kubectl.run(
        "-n", here, "wait", "--for=condition=Ready=false", "pod/web-1", "--timeout=30s"
    )  # fmt: skip
    for name in ("web", cluster_ip):
        answers = _settled(kubectl, here, "client", f"http://{name}/index.html", {"web-0"})
        assert answers == {"web-0"}, (name, answers)
