"""End-to-end fixtures: a real `recon serve` process and the system's real `kubectl`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.embedded import agent_id_for

RECON = [sys.executable, "-m", "reconciler.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ReconServer:
    """A `recon serve` child process; `restart()` after `kill9()` reuses the same data dir."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    runtime: str = "none"
    """The API tests need no node (pods stay Pending, as on a cluster without nodes); the
    node and GitOps tests ask for "docker"."""
    namespaces: list[str] = field(default_factory=list)
    """Namespaces a Docker test used, whose networks teardown removes."""
    extra_args: tuple[str, ...] = ()
    """More `recon serve` options (e.g. the ingress ports)."""

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A `recon` command (e.g. `sync NAME`) against this server's data dir, as a user
        types it: wide output, no KUBECONFIG from the environment."""
        return subprocess.run(
            [*RECON, *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "COLUMNS": "200", "KUBECONFIG": ""},
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def start(self) -> None:
        log = (self.data_dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                *RECON,
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--runtime",
                self.runtime,
                "--pause-image",
                "recon.local/pause:latest",
                "--proxy-image",
                "recon.local/busybox:latest",
                *self.extra_args,
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"recon serve exited: {(self.data_dir / 'server.log').read_text()[-3000:]}"
                )
            try:
                self.request("GET", "/readyz")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        raise RuntimeError("recon serve did not become ready within 30 s")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "default",
        content_type: str = "application/json",
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token == "default":
            token = self.token if (self.data_dir / "token").exists() else None
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=10) as resp:
                text = resp.read().decode()
                return resp.status, _maybe_json(text)
        except urllib.error.HTTPError as e:
            return e.code, _maybe_json(e.read().decode())

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReconServer]:
    srv = ReconServer(tmp_path_factory.mktemp("recon"), free_port())
    srv.start()
    yield srv
    srv.stop()


def remove_node_leftovers(data_dir: Path, namespaces: Iterable[str] = ()) -> None:
    """Remove what a `recon serve --runtime docker` on `data_dir` left on the engine: its
    containers and their volumes, its PersistentVolumeClaims' volumes (by its agent label),
    its memory dirs, and the networks of the given namespaces."""
    agent = agent_id_for(data_dir.resolve())
    docker = ["docker"]
    found = subprocess.run(
        [*docker, "ps", "-aq", "--filter", f"label=recon.dev/agent={agent}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    uids = set()
    for container in found:
        uid = subprocess.run(
            [*docker, "inspect", "-f", '{{index .Config.Labels "recon.dev/pod-uid"}}', container],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        uids.add(uid)
    if found:
        subprocess.run([*docker, "rm", "-f", *found], capture_output=True, check=False)
    for uid in uids - {""}:
        volumes = subprocess.run(
            [*docker, "volume", "ls", "-q", "--filter", f"label=recon.dev/pod-uid={uid}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if volumes:
            subprocess.run([*docker, "volume", "rm", "-f", *volumes], capture_output=True)
    claim_volumes = subprocess.run(
        [*docker, "volume", "ls", "-q", "--filter", f"label=recon.dev/agent={agent}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if claim_volumes:
        subprocess.run([*docker, "volume", "rm", "-f", *claim_volumes], capture_output=True)
    for namespace in namespaces:
        subprocess.run([*docker, "network", "rm", f"recon-{namespace}"], capture_output=True)
    # Shared by every server on this engine: removed only when none uses it any more.
    subprocess.run([*docker, "network", "rm", "recon-services"], capture_output=True)
    shutil.rmtree(Path("/dev/shm/recon") / agent, ignore_errors=True)


@contextlib.contextmanager
def running_docker_server(tmp_path: Path, *extra_args: str) -> Iterator[ReconServer]:
    """`recon serve --runtime docker` with `extra_args` (skips without an engine and the
    local images); stopped and its Docker objects removed afterwards."""
    probe = subprocess.run(
        ["docker", "image", "inspect", "recon.local/pause:latest", "recon.local/busybox:latest"],
        capture_output=True,
        check=False,
    )
    if shutil.which("docker") is None or probe.returncode != 0:
        pytest.skip("no Docker engine with the recon.local images (scripts/setup-docker.sh)")
    srv = ReconServer(tmp_path / "data", free_port(), runtime="docker", extra_args=extra_args)
    srv.data_dir.mkdir()
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        remove_node_leftovers(srv.data_dir, srv.namespaces)


@pytest.fixture
def docker_server(tmp_path: Path) -> Iterator[ReconServer]:
    """`recon serve --runtime docker` (skips without an engine and the local images)."""
    with running_docker_server(tmp_path) as srv:
        yield srv


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ReconServer]:
    srv = ReconServer(tmp_path / "data", free_port())
    srv.data_dir.mkdir()
    srv.start()
    yield srv
    srv.stop()


def require_kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not on PATH: the end-to-end tests need the real client")
    return path


@dataclass
class Kubectl:
    server: ReconServer

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        cmd = [require_kubectl(), "--kubeconfig", str(self.server.kubeconfig), *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)


def git_application(
    name: str, repo: Path, path: str, namespace: str, policy: dict[str, Any] | None = None
) -> str:
    """An Application (in `default`) of folder `path` of the local git repo, as JSON."""
    return json.dumps(
        {
            "apiVersion": "recon.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "source": {"repoURL": f"file://{repo}", "path": path},
                "destination": {"namespace": namespace},
                "syncPolicy": policy or {},
            },
        }
    )


def new_namespace(server: ReconServer, prefix: str) -> tuple[Kubectl, str]:
    """The real kubectl for `server` and a namespace made for one test, whose Docker network
    goes with the server's other leftovers (`remove_node_leftovers`)."""
    kubectl = Kubectl(server)
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    server.namespaces.append(name)
    kubectl.run("create", "namespace", name)
    return kubectl, name


@pytest.fixture
def kubectl(server: ReconServer) -> Kubectl:
    return Kubectl(server)
