"""`recon operator --kubeconfig K` runs the same Application controller against another
cluster: a second, separate `recon serve --no-gitops` stands in for it. The same
Application there gives the same live objects as the in-process controller here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RECON, Kubectl, ReconServer, free_port
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

MANIFESTS = {
    "config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
    "data:\n  greeting: hello\n",
    "app/deployment.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: recon.local/busybox:latest
          command: ["sleep", "3600"]
""",
    "app/service.yaml": """apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
""",
}


def _repo(root: Path) -> Path:
    repo = root / "twin-repo"
    for name, text in MANIFESTS.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git = ["git", "-c", "user.email=e2e@recon.dev", "-c", "user.name=e2e"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "twin"], cwd=repo, check=True)
    return repo


def _application(repo: Path, namespace: str) -> str:
    return json.dumps(
        {
            "apiVersion": "recon.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": f"twin-{namespace}", "namespace": "default"},
            "spec": {
                "source": {"repoURL": f"file://{repo}"},
                "destination": {"namespace": namespace},
                "syncPolicy": {"automated": {"prune": True}},
            },
        }
    )


def _live(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    """The objects the Application made, without what each server fills in itself."""
    out: dict[str, Any] = {}
    for kind in ("configmap", "deployment", "service"):
        for obj in kubectl.json("-n", namespace, "get", kind)["items"]:
            if obj["metadata"]["name"] == "kube-root-ca.crt":
                continue
            meta = obj["metadata"]
            for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
                meta.pop(key, None)
            obj.pop("status", None)
            for key in ("clusterIP", "clusterIPs"):
                obj.get("spec", {}).pop(key, None)
            out[f"{kind}/{meta['name']}"] = obj
    return out


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[ReconServer]:
    """A plain `recon serve --no-gitops` and `recon operator` pointed at it."""
    data = tmp_path / "remote"
    data.mkdir()
    port = free_port()
    log = (data / "server.log").open("ab")
    server = subprocess.Popen(
        [*RECON, "serve", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
         "--runtime", "none", "--no-gitops"],
        stdout=log,
        stderr=log,
    )  # fmt: skip
    handle = ReconServer(data, port, proc=server)
    operator: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: (data / "kubeconfig").exists() and handle.request("GET", "/readyz")[0]
              == 200, 30, "the remote server")  # fmt: skip
        operator = subprocess.Popen(
            [*RECON, "operator", "--kubeconfig", str(data / "kubeconfig"),
             "--cache-dir", str(tmp_path / "operator-cache")],
            stdout=(data / "operator.log").open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        yield handle
    finally:
        for proc in (operator, server):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)


def test_operator_against_another_cluster_gives_the_same_objects(
    server: ReconServer, remote: ReconServer, tmp_path: Path
) -> None:
    repo = _repo(tmp_path)
    namespace = f"twin-{uuid.uuid4().hex[:6]}"
    here, there = Kubectl(server), Kubectl(remote)
    for kubectl in (here, there):
        kubectl.run("create", "namespace", namespace)
    here.run("apply", "-f", "-", input=_application(repo, namespace))
    # The operator installs the CRD on the remote first; the Application can follow.
    wait_until(lambda: there.run("get", "crd", "applications.recon.dev", check=False).returncode
          == 0, 30, "the operator to install its CRD")  # fmt: skip
    there.run("apply", "-f", "-", input=_application(repo, namespace))

    def synced(kubectl: Kubectl) -> bool:
        app = kubectl.json("get", "application", f"twin-{namespace}")
        return bool((app.get("status") or {}).get("sync", {}).get("status") == "Synced")

    wait_until(lambda: synced(here), 60, "the in-process controller to sync")
    wait_until(lambda: synced(there), 60, "recon operator to sync the remote")
    mine, theirs = _live(here, namespace), _live(there, namespace)
    assert set(mine) == {"configmap/settings", "deployment/web", "service/web"}
    assert mine == theirs
    for kubectl in (here, there):
        kubectl.run("delete", "application", f"twin-{namespace}", "--timeout=60s")
        kubectl.run("delete", "namespace", namespace, "--wait=false")
