"""A rolling update behind a NodePort Service on `recon serve --runtime docker`, with the
real kubectl: with readiness probes and `maxUnavailable: 0` every request sent during the
rollout is served (a client counts: zero failures), and `kubectl rollout undo` brings the
old version back (issue 5's first acceptance test)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Images:
    v1: str
    v2: str


@pytest.fixture
def images(tmp_path: Path) -> Iterator[Images]:
    """Two tiny images built offline from recon.local/busybox, each serving its own
    /www/index.html; removed afterwards. Requested before `docker_server`, so they are
    removed after the server's containers are."""
    repo = f"recon.local/rollout-e2e-{uuid.uuid4().hex[:8]}"
    built = Images(f"{repo}:v1", f"{repo}:v2")
    try:
        for version, tag in (("v1", built.v1), ("v2", built.v2)):
            context = tmp_path / f"image-{version}"
            context.mkdir()
            (context / "index.html").write_text(f"{version}\n")
            (context / "Dockerfile").write_text(
                "FROM recon.local/busybox:latest\nCOPY index.html /www/index.html\n"
            )
            result = subprocess.run(
                ["docker", "build", "-q", "-t", tag, str(context)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                pytest.skip(f"cannot build a test image offline: {result.stderr[-500:]}")
        yield built
    finally:
        subprocess.run(["docker", "rmi", "-f", built.v1, built.v2], capture_output=True)


def _manifest(namespace: str, image: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {namespace}}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 0, maxSurge: 1}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
        - name: httpd
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
          ports: [{{containerPort: 8080}}]
          readinessProbe:
            httpGet: {{path: /index.html, port: 8080}}
            periodSeconds: 1
"""


def _get(port: int, timeout: float = 5) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as response:
        return str(response.read().decode().strip())


@dataclass
class CountingClient:
    """Sends GET / to the node port back to back on a thread, one connection each, and
    keeps every answer and every failure (no retries: a failed request is a failure)."""

    port: int
    answers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> CountingClient:
        self._thread = threading.Thread(target=self._loop, name="counting-client", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.answers.append(_get(self.port))
            except (urllib.error.URLError, OSError) as exc:
                self.failures.append(f"{time.monotonic() - started:.2f}s: {exc!r}")
            time.sleep(0.01)

    def wait_for(self, ok: Callable[[list[str]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok(list(self.answers)):
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out: {what}; last answers {self.answers[-10:]}")


def _only(version: str, count: int) -> Callable[[list[str]], bool]:
    """The last `count` answers all came from `version`."""
    return lambda answers: len(answers) >= count and set(answers[-count:]) == {version}


def _switches(answers: list[str]) -> list[str]:
    """The versions in the order they answered, repeats folded: ["v1", "v2"] for a clean
    switch (a rollout with both versions serving for a while may alternate)."""
    folded: list[str] = []
    for answer in answers:
        if not folded or folded[-1] != answer:
            folded.append(answer)
    return folded


def test_rolling_update_behind_node_port_serves_every_request_then_undo(
    images: Images, docker_server: ReconServer
) -> None:
    namespace = f"roll-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    kubectl.run("apply", "-f", "-", input=_manifest(namespace, images.v1))
    ns = ("-n", namespace)
    kubectl.run(*ns, "rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
    node_port = kubectl.json(*ns, "get", "service", "web")["spec"]["ports"][0]["nodePort"]

    # Before counting: the node port answers v1 (its listener and routes are in place).
    deadline = time.monotonic() + 30
    while True:
        try:
            if _get(node_port, timeout=2) == "v1":
                break
        except (urllib.error.URLError, OSError):
            pass
        assert time.monotonic() < deadline, "the node port never answered v1"
        time.sleep(0.2)

    with CountingClient(node_port) as client:
        client.wait_for(_only("v1", 5), 10, "v1 answers before the rollout")
        kubectl.run(*ns, "set", "image", "deployment/web", f"httpd={images.v2}")
        kubectl.run(*ns, "rollout", "status", "deployment/web", "--timeout=180s", timeout=190)
        client.wait_for(_only("v2", 20), 30, "only v2 answers after the rollout")
    assert client.failures == [], (
        f"{len(client.failures)} of {len(client.answers) + len(client.failures)} requests "
        f"failed during the rollout: {client.failures[:10]}"
    )
    assert _switches(client.answers)[0] == "v1" and _switches(client.answers)[-1] == "v2"
    assert set(client.answers) == {"v1", "v2"}

    deployment = kubectl.json(*ns, "get", "deployment", "web")
    assert deployment["status"]["updatedReplicas"] == 3
    assert deployment["status"]["availableReplicas"] == 3
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    with CountingClient(node_port) as client:
        client.wait_for(_only("v2", 5), 10, "v2 answers before the undo")
        kubectl.run(*ns, "rollout", "undo", "deployment/web")
        kubectl.run(*ns, "rollout", "status", "deployment/web", "--timeout=180s", timeout=190)
        client.wait_for(_only("v1", 20), 30, "only v1 answers after the undo")
    assert client.failures == [], (
        f"{len(client.failures)} of {len(client.answers) + len(client.failures)} requests "
        f"failed during the undo: {client.failures[:10]}"
    )
    assert _switches(client.answers)[0] == "v2" and _switches(client.answers)[-1] == "v1"

    deployment = kubectl.json(*ns, "get", "deployment", "web")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == images.v1
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    # The undo made revision 1 revision 3: the history lists 2 and 3.
    history = kubectl.run(*ns, "rollout", "history", "deployment/web").stdout
    revisions = [int(m) for m in re.findall(r"^(\d+)\s", history, flags=re.MULTILINE)]
    assert revisions == [2, 3], history
    replica_sets = kubectl.json(*ns, "get", "replicasets")["items"]
    by_image = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in replica_sets}
    assert set(by_image) == {images.v1, images.v2}
    assert by_image[images.v1]["spec"]["replicas"] == 3
    assert by_image[images.v2]["spec"]["replicas"] == 0
    pods = kubectl.json(*ns, "get", "pods", "-l", "app=web")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 3
    assert {p["spec"]["containers"][0]["image"] for p in live} == {images.v1}
