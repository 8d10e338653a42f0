"""An Application syncing a real git repository onto `recon serve --runtime docker`: the
repo-template app comes up and answers on its NodePort, drift is healed, a schema error
applies nothing and says where, a file removed from git is pruned, and deleting the
Application prunes what it deployed."""

from __future__ import annotations

import json
import shutil
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import commit_all, git, wait_until

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"


def _repo(tmp_path: Path, namespace: str) -> Path:
    repo = tmp_path / "app-repo"
    shutil.copytree(TEMPLATE, repo)
    kustomization = repo / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("namespace: demo", f"namespace: {namespace}")
    )
    (repo / "namespace.yaml").write_text(
        f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n"
    )
    service = repo / "web" / "service.yaml"  # let the server pick a free node port
    service.write_text(
        "\n".join(line for line in service.read_text().splitlines() if "nodePort" not in line)
    )
    git(repo, "init", "-q")
    commit_all(repo, "the template")
    return repo


def test_application_syncs_heals_rejects_prunes_and_deletes(
    docker_server: ReconServer, tmp_path: Path
) -> None:
    namespace = f"app-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    repo = _repo(tmp_path, namespace)
    application = {
        "apiVersion": "recon.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {
            "source": {"repoURL": f"file://{repo}"},
            "destination": {"namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "interval": "3s"},
        },
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(application))

    def app() -> dict[str, Any]:
        return dict(kubectl.json("get", "application", "shop"))

    def status() -> dict[str, Any]:
        return dict(app().get("status") or {})

    def healthy() -> bool:
        s = status()
        return (s.get("sync") or {}).get("status") == "Synced" and (s.get("health") or {}).get(
            "status"
        ) == "Healthy"

    wait_until(healthy, 120, "the Application Synced and Healthy")
    first = status()
    assert first["history"][0]["phase"] == "Succeeded"
    kinds = {r["kind"] for r in first["resources"]}
    assert kinds == {"Namespace", "ConfigMap", "Service", "Ingress", "Deployment", "CronJob"}
    node_port = kubectl.json("-n", namespace, "get", "service", "web")["spec"]["ports"][0][
        "nodePort"
    ]
    with urllib.request.urlopen(f"http://127.0.0.1:{node_port}/", timeout=5) as response:
        assert "Hello from Recon" in response.read().decode()
    listed = kubectl.run("get", "applications").stdout
    assert "shop" in listed and "Synced" in listed and "Healthy" in listed

    # Drift: a deleted Deployment comes back, a hand-made scale is reverted.
    kubectl.run("-n", namespace, "delete", "deployment", "web")
    wait_until(
        lambda: (
            kubectl.run("-n", namespace, "get", "deployment", "web", check=False).returncode == 0
        ),
        30,
        "self-heal to restore the Deployment",
    )
    kubectl.run("-n", namespace, "scale", "deployment", "web", "--replicas=4")
    wait_until(
        lambda: kubectl.json("-n", namespace, "get", "deployment", "web")["spec"]["replicas"] == 2,
        30,
        "self-heal to revert the scale",
    )
    assert "self-heal" in {h["initiatedBy"] for h in status()["history"]}

    # A schema error: nothing is applied, the error says where.
    deployment = repo / "web" / "deployment.yaml"
    good = deployment.read_text()
    deployment.write_text(good.replace("replicas: 2", 'replicas: "two"'))
    configmap = repo / "web" / "configmap.yaml"
    configmap.write_text(configmap.read_text().replace("Hello from Recon", "Hello, changed"))
    commit_all(repo, "broken")

    def rejected() -> dict[str, Any] | None:
        state = status().get("operationState") or {}
        return state if state.get("errors") else None

    state = wait_until(rejected, 30, "the broken revision to be reported")
    assert state["phase"] == "Failed"
    assert any('spec.replicas: "two"' in e for e in state["errors"]), state["errors"]
    assert "nothing was applied" in state["message"]
    live = kubectl.json("-n", namespace, "get", "configmap", "web-content")
    assert "Hello from Recon" in json.dumps(live["data"])

    # Fixed, and the CronJob removed from git: it is pruned.
    deployment.write_text(good)
    shutil.rmtree(repo / "jobs")
    kustomization = repo / "kustomization.yaml"
    kustomization.write_text(
        "\n".join(line for line in kustomization.read_text().splitlines() if "cronjob" not in line)
        + "\n"
    )
    commit_all(repo, "fixed, no report")
    wait_until(
        lambda: (
            kubectl.run("-n", namespace, "get", "cronjob", "report", check=False).returncode != 0
        ),
        30,
        "the CronJob to be pruned",
    )
    wait_until(healthy, 60, "Synced and Healthy again")
    live = kubectl.json("-n", namespace, "get", "configmap", "web-content")
    assert "Hello, changed" in json.dumps(live["data"])

    # Deleting the Application prunes what it deployed.
    kubectl.run("delete", "application", "shop", "--timeout=60s")
    wait_until(
        lambda: (
            kubectl.run("-n", namespace, "get", "deployment", "web", check=False).returncode != 0
        ),
        30,
        "the Deployment to go with its Application",
    )
