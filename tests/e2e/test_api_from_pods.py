"""Pods reach the API server as on a cluster, on `recon serve --runtime docker`: the
`kubernetes` Service in `default` (10.96.0.1:443) by name, and the `KUBERNETES_SERVICE_*`
variables every pod gets; TLS end to end, with a certificate valid for the Service's names.

busybox's TLS client cannot talk to the API server's TLS settings, so the pod only relays
bytes (`nc`, from inside its network namespace to `kubernetes.default.svc:443`) and the
test speaks real TLS through the relay, verifying the certificate for
`kubernetes.default.svc` against the server's CA, as an in-cluster client does."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import uuid

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e


class _InClusterConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:`port` that names `kubernetes.default.svc` in SNI and verifies
    the certificate for it."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port, timeout=10, context=context)
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname="kubernetes.default.svc")


def test_a_pod_reaches_the_api_by_service_name(docker_server: ReconServer) -> None:
    namespace = f"api-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    service = wait_until(
        lambda: kubectl.run("get", "service", "kubernetes", "-o", "json", check=False).stdout,
        30,
        "the kubernetes Service",
    )
    spec = json.loads(service)["spec"]
    assert spec["clusterIP"] == "10.96.0.1" and spec["ports"][0]["port"] == 443
    kubectl.run("create", "namespace", namespace)
    pod = f"""apiVersion: v1
kind: Pod
metadata: {{name: relay, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: main
      image: recon.local/busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["nc", "-ll", "-p", "8443", "-e", "nc", "kubernetes.default.svc", "443"]
      ports: [{{containerPort: 8443}}]
      readinessProbe: {{tcpSocket: {{port: 8443}}, periodSeconds: 1}}
"""
    kubectl.run("apply", "-f", "-", input=pod)
    kubectl.run(
        "-n", namespace, "wait", "--for=condition=Ready", "pod/relay", "--timeout=60s"
    )  # fmt: skip
    env = kubectl.run("-n", namespace, "exec", "relay", "--", "env").stdout.splitlines()
    assert "KUBERNETES_SERVICE_HOST=10.96.0.1" in env
    assert "KUBERNETES_SERVICE_PORT=443" in env
    annotations = kubectl.json("-n", namespace, "get", "pod", "relay")["metadata"]["annotations"]
    port = json.loads(annotations["recon.dev/published-ports"])["8443/TCP"]
    context = ssl.create_default_context(cafile=str(docker_server.data_dir / "pki" / "ca.crt"))

    def version() -> dict[str, str] | None:
        connection = _InClusterConnection(port, context)
        try:
            connection.request("GET", "/version")
            return dict(json.loads(connection.getresponse().read()))
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    found = wait_until(version, 30, "the API through the pod")
    assert found["gitVersion"].endswith("-recon")
