"""Ingress on `recon serve --runtime docker`, driven by the real kubectl: host and path
rules reach the right Deployment's pods on the ingress port, HTTPS answers by SNI with the
certificate of a `kubectl create secret tls` Secret, HTTP to that host is redirected, and
`kubectl get ingress` shows the address."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.node.ingress_tls import self_signed
from tests.e2e.conftest import Kubectl, ReconServer, free_port, running_docker_server

pytestmark = pytest.mark.e2e

HOST = "shop.test"


def _deployment(name: str, namespace: str, replicas: int, files: str) -> str:
    return f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: httpd
          image: recon.local/busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "mkdir -p /www/api && {files} && exec httpd -f -p 8080 -h /www"]
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe:
            tcpSocket: {{port: 8080}}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""


def _manifests(namespace: str) -> str:
    web = _deployment("web", namespace, 2, "echo web from $(hostname) > /www/index.html")
    api = _deployment("api", namespace, 1, "echo hello from api > /www/api/hello.txt")
    ingress = f"""---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: shop, namespace: {namespace}}}
spec:
  ingressClassName: nginx
  tls: [{{hosts: [{HOST}], secretName: shop-tls}}]
  rules:
    - host: {HOST}
      http:
        paths:
          - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{name: http}}}}}}}}
          - path: /api
            pathType: Prefix
            backend: {{service: {{name: api, port: {{number: 80}}}}}}
"""
    return web + api + ingress


def _certificate(directory: Path) -> tuple[Path, Path, bytes]:
    pem, key = self_signed(HOST, [HOST])
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(pem)
    key_path.write_bytes(key)
    return cert_path, key_path, pem


def _get(port: int, path: str, *, tls: ssl.SSLContext | None = None) -> tuple[int, str, str]:
    """(status, body, Location) of GET `path` with Host `shop.test` on 127.0.0.1:`port`."""
    connection: http.client.HTTPConnection
    if tls is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    else:
        connection = _SniConnection(port, tls)
    try:
        connection.request("GET", path, headers={"Host": HOST})
        response = connection.getresponse()
        return response.status, response.read().decode().strip(), response.getheader("Location", "")
    finally:
        connection.close()


class _SniConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 that says `shop.test` in SNI and verifies the certificate for it."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port, timeout=5, context=context)
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=HOST)


@pytest.fixture
def ingress_server(tmp_path: Path) -> Iterator[tuple[ReconServer, int, int]]:
    """A Docker server whose ingress listens on two free ports (not 80 and 443, which
    something else on the machine may hold): (server, HTTP port, HTTPS port)."""
    http_port, https_port = free_port(), free_port()
    with running_docker_server(
        tmp_path,
        "--ingress-http-port",
        str(http_port),
        "--ingress-https-port",
        str(https_port),
    ) as srv:
        yield srv, http_port, https_port


def _eventually_get(port: int, path: str, expect: str, tls: ssl.SSLContext | None = None) -> str:
    deadline = time.monotonic() + 30
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body, _ = _get(port, path, tls=tls)
            last = (status, body)
            if status == 200 and expect in body:
                return body
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"GET {path}: {last!r}")


def test_ingress_routes_hosts_and_paths_over_http_and_https(
    ingress_server: tuple[ReconServer, int, int], tmp_path: Path
) -> None:
    server, http_port, https_port = ingress_server
    namespace = f"ing-{uuid.uuid4().hex[:6]}"
    server.namespaces.append(namespace)
    kubectl = Kubectl(server)
    kubectl.run("create", "namespace", namespace)
    cert_path, key_path, pem = _certificate(tmp_path)
    kubectl.run(
        "-n", namespace, "create", "secret", "tls", "shop-tls",
        f"--cert={cert_path}", f"--key={key_path}",
    )  # fmt: skip
    kubectl.run("apply", "-f", "-", input=_manifests(namespace))
    kubectl.run(
        "-n", namespace, "wait", "--for=condition=Available", "deployment", "--all",
        "--timeout=90s",
    )  # fmt: skip

    verify = ssl.create_default_context(cadata=pem.decode())
    assert _eventually_get(https_port, "/api/hello.txt", "hello from api", verify)
    seen = {_eventually_get(https_port, "/", "web from", verify) for _ in range(6)}
    assert len(seen) == 2, seen  # both web pods answer, in turn

    status, _, location = _get(http_port, "/api/hello.txt?x=1")
    assert status == 308
    assert location == f"https://{HOST}:{https_port}/api/hello.txt?x=1"

    status, body, _ = _get(https_port, "/api/missing.txt", tls=verify)
    assert status == 404 and "404" in body  # busybox httpd's own 404, through the ingress

    row = kubectl.run("-n", namespace, "get", "ingress", "shop", "--no-headers").stdout.split()
    # NAME CLASS HOSTS ADDRESS PORTS AGE
    assert row[:4] == ["shop", "nginx", HOST, "127.0.0.1"]

    # The api Deployment scaled to zero: its path answers 503 naming the Service.
    kubectl.run("-n", namespace, "scale", "deployment", "api", "--replicas=0")
    deadline = time.monotonic() + 30
    status = 0
    while time.monotonic() < deadline:
        status, body, _ = _get(https_port, "/api/hello.txt", tls=verify)
        if status == 503:
            break
        time.sleep(0.2)
    assert status == 503 and f'service "{namespace}/api"' in body
