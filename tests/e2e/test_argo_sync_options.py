"""Argo CD's sync options through the real clients on `recon serve` (no container runtime:
ConfigMaps need no node): Applications written with `kubectl apply`, synced with `recon
sync`, checked with `kubectl get`. `FailOnSharedResource=true` refuses an object another
Application owns and applies nothing; `Replace=true` writes the whole object, without the
last-applied annotation kubectl's apply leaves."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, git_application
from tests.e2e.support import commit_all, git

pytestmark = pytest.mark.e2e

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _configmap(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: {value}\n"


def _sync(server: ReconServer, name: str) -> subprocess.CompletedProcess[str]:
    return server.cli("sync", name, "--timeout", "60")


def _application(name: str, repo: Path, path: str, namespace: str, *options: str) -> str:
    return git_application(name, repo, path, namespace, {"syncOptions": list(options)})


def test_fail_on_shared_resource_and_replace(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace, first, second = f"opts-{suffix}", f"first-{suffix}", f"second-{suffix}"
    kubectl.run("create", "namespace", namespace)
    repo = tmp_path / "repo"
    (repo / "first").mkdir(parents=True)
    (repo / "second").mkdir()
    (repo / "first" / "settings.yaml").write_text(_configmap("settings", "first"))
    (repo / "second" / "settings.yaml").write_text(_configmap("settings", "second"))
    (repo / "second" / "own.yaml").write_text(_configmap("own", "second"))
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "two applications, one shared ConfigMap")

    kubectl.run("apply", "-f", "-", input=_application(first, repo, "first", namespace))
    synced = _sync(server, first)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    settings = kubectl.json("-n", namespace, "get", "configmap", "settings")
    assert settings["metadata"]["annotations"]["recon.dev/application"] == f"default/{first}"
    assert LAST_APPLIED in settings["metadata"]["annotations"]

    careful = _application(
        second, repo, "second", namespace, "FailOnSharedResource=true", "Replace=true"
    )
    kubectl.run("apply", "-f", "-", input=careful)
    refused = _sync(server, second)
    assert refused.returncode == 1
    assert (
        f"Shared resource found: ConfigMap/settings is part of applications default/{second} "
        f"and default/{first}"
    ) in refused.stdout + refused.stderr
    assert kubectl.run("-n", namespace, "get", "configmap", "own", check=False).returncode != 0
    state = kubectl.json("-n", "default", "get", "application", second)["status"]
    assert state["operationState"]["phase"] == "Failed"
    assert state["operationState"]["errors"] == [
        f"second/settings.yaml:1: ConfigMap/settings is part of applications default/{second} "
        f"and default/{first}"
    ]

    # Without FailOnSharedResource the second one takes the object over, by replacing it.
    kubectl.run(
        "apply", "-f", "-", input=_application(second, repo, "second", namespace, "Replace=true")
    )
    taken = _sync(server, second)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    settings = kubectl.json("-n", namespace, "get", "configmap", "settings")
    assert settings["data"] == {"k": "second"}
    assert settings["metadata"]["annotations"]["recon.dev/application"] == f"default/{second}"
    assert LAST_APPLIED not in settings["metadata"]["annotations"]
    assert kubectl.json("-n", namespace, "get", "configmap", "own")["data"] == {"k": "second"}
