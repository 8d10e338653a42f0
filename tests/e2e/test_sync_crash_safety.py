"""`kill -9` of `recon serve` in the middle of an Application's sync: after the restart the
Application converges, every object exists once with the content of git, nothing is lost."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

COUNT = 800


def test_kill_9_during_a_sync_converges_after_restart(
    fresh_server: ReconServer, tmp_path: Path
) -> None:
    repo = tmp_path / "many"
    repo.mkdir()
    for i in range(COUNT):
        (repo / f"cm{i:03}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i:03}\ndata:\n  n: '{i}'\n"
        )
    git = ["git", "-c", "user.email=e2e@recon.dev", "-c", "user.name=e2e"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "many"]):
        subprocess.run([*git, *args], cwd=repo, check=True)
    kubectl = Kubectl(fresh_server)
    kubectl.run("create", "namespace", "crashy")
    app = {
        "apiVersion": "recon.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "many", "namespace": "default"},
        "spec": {
            "source": {"repoURL": f"file://{repo}"},
            "destination": {"namespace": "crashy"},
            "syncPolicy": {"automated": {"prune": True}, "interval": "2s"},
        },
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(app))

    def created() -> int:
        """The Application's ConfigMaps (not the root CA publisher's `kube-root-ca.crt`)."""
        status, body = fresh_server.request("GET", "/api/v1/namespaces/crashy/configmaps")
        if status != 200:
            return 0
        return sum(1 for i in body["items"] if i["metadata"]["name"].startswith("cm"))

    seen = wait_until(
        lambda: created() or None, 60, "the sync to start creating objects", interval=0.01
    )
    assert seen < COUNT, "the sync finished before it could be interrupted"
    fresh_server.kill9()
    fresh_server.start()

    def converged() -> bool:
        got = kubectl.json("get", "application", "many").get("status") or {}
        return (got.get("sync") or {}).get("status") == "Synced" and created() == COUNT

    wait_until(converged, 120, "the Application to converge after the restart")
    items = [  # not the root CA publisher's
        i
        for i in kubectl.json("-n", "crashy", "get", "configmaps")["items"]
        if i["metadata"]["name"] != "kube-root-ca.crt"
    ]
    names = sorted(i["metadata"]["name"] for i in items)
    assert names == [f"cm{i:03}" for i in range(COUNT)]
    for item in items:
        number = int(item["metadata"]["name"][2:])
        assert item["data"] == {"n": str(number)}
        annotations = item["metadata"]["annotations"]
        assert annotations["recon.dev/application"] == "default/many"
        assert "kubectl.kubernetes.io/last-applied-configuration" in annotations
    history = kubectl.json("get", "application", "many")["status"]["history"]
    assert history[-1]["phase"] == "Succeeded"
