"""Argo CD-style resource hooks on `recon serve --runtime docker`: a PreSync Job really runs
to completion before the Application's objects are applied, a PostSync Job runs once they
are healthy (and is deleted, HookSucceeded), and neither is ever pruned or compared."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import commit_all, git, wait_until

pytestmark = pytest.mark.e2e


def _job(name: str, phase: str, script: str, policy: str = "BeforeHookCreation") -> str:
    return f"""---
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations:
    argocd.argoproj.io/hook: {phase}
    argocd.argoproj.io/hook-delete-policy: {policy}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 0
      containers:
        - name: main
          image: recon.local/busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "{script}"]
"""


def _repo(tmp_path: Path, namespace: str) -> Path:
    repo = tmp_path / "hooks-repo"
    repo.mkdir()
    (repo / "app.yaml").write_text(
        f"""apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {namespace}}}
data: {{mode: live}}
"""
        + _job("migrate", "PreSync", "sleep 1; echo migrated").replace(
            "  name: migrate\n", f"  name: migrate\n  namespace: {namespace}\n"
        )
        + _job("smoke", "PostSync", "echo ok", "HookSucceeded").replace(
            "  name: smoke\n", f"  name: smoke\n  namespace: {namespace}\n"
        )
    )
    git(repo, "init", "-q")
    commit_all(repo, "app with hooks")
    return repo


def test_pre_and_post_sync_hooks_run_around_the_sync(
    docker_server: ReconServer, tmp_path: Path
) -> None:
    namespace = f"hooks-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    repo = _repo(tmp_path, namespace)
    application = f"""apiVersion: recon.dev/v1alpha1
kind: Application
metadata: {{name: hooked, namespace: default}}
spec:
  source: {{repoURL: "file://{repo}"}}
  destination: {{namespace: {namespace}}}
  syncPolicy: {{automated: {{prune: true}}, interval: 3s}}
"""
    # A PreSync hook runs before anything of the sync exists: its namespace must already
    # (as with Argo CD without CreateNamespace).
    kubectl.run("create", "namespace", namespace)
    kubectl.run("apply", "-f", "-", input=application)

    def operation() -> Any:
        app = kubectl.json("get", "application", "hooked")
        state = (app.get("status") or {}).get("operationState") or {}
        return state if state.get("phase") in ("Succeeded", "Failed", "Error") else None

    state = wait_until(operation, 120, "the first sync to end")
    assert state["phase"] == "Succeeded", state
    migrate = kubectl.json("-n", namespace, "get", "job", "migrate")
    assert migrate["status"]["succeeded"] == 1
    settings = kubectl.json("-n", namespace, "get", "configmap", "settings")
    # The ConfigMap was applied only after the PreSync Job completed.
    assert migrate["status"]["completionTime"] <= settings["metadata"]["creationTimestamp"]
    logs = kubectl.run("-n", namespace, "logs", "job/migrate").stdout
    assert "migrated" in logs
    gone = kubectl.run("-n", namespace, "get", "job", "smoke", check=False)
    assert gone.returncode != 0  # HookSucceeded: deleted once it succeeded
    results = {(r["kind"], r["name"]): r for r in state["syncResult"]["resources"]}
    assert results[("Job", "smoke")]["status"] == "Synced"
    app = kubectl.json("get", "application", "hooked")
    listed = {(r["kind"], r["name"]) for r in app["status"]["resources"]}
    assert ("Job", "migrate") not in listed and ("ConfigMap", "settings") in listed
    assert app["status"]["sync"]["status"] == "Synced"
