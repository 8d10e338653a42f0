"""`kubectl port-forward`, the real client against `recon serve --runtime docker`.

kubectl 1.31+ tunnels SPDY/3.1 in a WebSocket (`SPDY/3.1+portforward.k8s.io`) and falls back
to a plain `Upgrade: SPDY/3.1` when that fails; `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`
makes it use the latter from the start, so both transports are exercised.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, require_kubectl

pytestmark = pytest.mark.e2e

IMAGE = "recon.local/busybox:latest"


def _manifests(namespace: str) -> str:
    # httpd listens on the pod's loopback too: port-forward connects to 127.0.0.1 inside it.
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: {namespace}, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: httpd
      image: {IMAGE}
      imagePullPolicy: Never
      command:
        - sh
        - -c
        - echo hello from $(hostname) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp
      ports: [{{containerPort: 8080, name: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {namespace}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: http}}]
"""


@pytest.fixture
def namespace(docker_server: ReconServer) -> str:
    name = f"pf-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(name)
    Kubectl(docker_server).run("create", "namespace", name)
    return name


class Forward:
    """A running `kubectl port-forward`, its local ports, and what it printed."""

    def __init__(self, proc: subprocess.Popen[str], ports: list[int]) -> None:
        self.proc = proc
        self.ports = ports
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def text(self) -> str:
        return "".join(self.output)


@contextmanager
def port_forward(
    server: ReconServer, namespace: str, target: str, *remotes: str, websockets: bool = True
) -> Iterator[Forward]:
    env = dict(os.environ)
    if not websockets:
        env["KUBECTL_PORT_FORWARD_WEBSOCKETS"] = "false"
    proc = subprocess.Popen(
        [
            require_kubectl(), "--kubeconfig", str(server.kubeconfig),
            "-n", namespace, "port-forward", target, *[f":{r}" for r in remotes],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ports: list[int] = []
        deadline = time.monotonic() + 30
        while len(ports) < len(remotes) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
            if found:
                ports.append(int(found[1]))
        assert len(ports) == len(remotes), f"kubectl port-forward did not start: {ports}"
        yield Forward(proc, ports)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, 15)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, 9)
                proc.wait(10)


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as resp:
        return str(resp.read().decode())


def _start_web(docker_server: ReconServer, namespace: str) -> Kubectl:
    kubectl = Kubectl(docker_server)
    kubectl.run("apply", "-f", "-", input=_manifests(namespace))
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
    return kubectl


@pytest.mark.parametrize("websockets", [True, False], ids=["websocket-tunnel", "spdy-upgrade"])
def test_port_forward_to_a_pod_and_a_service(
    docker_server: ReconServer, namespace: str, websockets: bool
) -> None:
    _start_web(docker_server, namespace)
    with port_forward(docker_server, namespace, "pod/web", "8080", websockets=websockets) as fwd:
        for _ in range(5):
            assert _get(fwd.ports[0]) == "hello from web\n"
        # A larger body, several requests on one kubectl connection at once.
        results: list[str] = []
        threads = [
            threading.Thread(target=lambda: results.append(_get(fwd.ports[0]))) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert results == ["hello from web\n"] * 4
        assert fwd.proc.poll() is None
    # svc/web: kubectl picks a pod of the service and maps port 80 to targetPort http (8080).
    with port_forward(docker_server, namespace, "svc/web", "80", websockets=websockets) as fwd:
        assert _get(fwd.ports[0]) == "hello from web\n"
        assert "-> 8080" in fwd.text() or fwd.proc.poll() is None


def test_a_port_nothing_listens_on_gives_kubectls_error(
    docker_server: ReconServer, namespace: str
) -> None:
    """The kubelet's error reaches kubectl on the error stream (no hang). kubectl 1.32 then
    drops the whole connection, as it does against a real cluster; other forwards (another
    kubectl) are unaffected."""
    _start_web(docker_server, namespace)
    with (
        port_forward(docker_server, namespace, "pod/web", "8080") as good,
        port_forward(docker_server, namespace, "pod/web", "8080", "9999") as both,
    ):
        assert _get(both.ports[0]) == "hello from web\n"
        with pytest.raises(OSError):
            _get(both.ports[1])
        deadline = time.monotonic() + 15
        while "failed to connect" not in both.text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = both.text()
        assert "an error occurred forwarding" in text and "-> 9999" in text, text
        assert "error forwarding port 9999 to pod" in text and "connection refused" in text, text
        # kubectl 1.32 drops the connection after an error, as against a kubelet.
        both.proc.wait(15)
        deadline = time.monotonic() + 5
        while "lost connection to pod" not in both.text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert both.proc.returncode != 0 and "lost connection to pod" in both.text()
        # The other kubectl still forwards.
        for _ in range(3):
            assert _get(good.ports[0]) == "hello from web\n"
        assert good.proc.poll() is None
