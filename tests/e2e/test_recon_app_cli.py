"""The client commands end to end on `recon serve --runtime docker`, as a user drives them:
`recon init`, `recon repo create` + `git push`, then `recon app list|get|set|create|delete`,
`recon status`, `recon history`, `recon diff`, `recon sync` and `recon rollback`, checked
against what `kubectl` and the app itself (through its NodePort) show."""

from __future__ import annotations

import os
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import RECON, Kubectl, ReconServer, free_port
from tests.e2e.support import commit_all, git, wait_until

pytestmark = pytest.mark.e2e


def recon(
    server: ReconServer, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A client command finding the server through --data-dir (the kubeconfig it wrote)."""
    return subprocess.run(
        [*RECON, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "200", "KUBECONFIG": "", **(env or {})},
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def page(kubectl: Kubectl, namespace: str) -> str:
    port = kubectl.json("-n", namespace, "get", "service", "web")["spec"]["ports"][0]["nodePort"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return str(response.read().decode())


def test_the_application_commands(docker_server: ReconServer, tmp_path: Path) -> None:
    namespace = f"cli-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    data = ["--data-dir", str(docker_server.data_dir)]
    name = f"shop-{uuid.uuid4().hex[:4]}"

    # recon init: the template, committed on main.
    work = tmp_path / "work"
    out = ok(recon(docker_server, "init", str(work)))
    assert "web/deployment.yaml" in out and "committed on main" in out
    assert git(work, "log", "--oneline").stdout.count("\n") == 1
    # Its own namespace and no fixed node port, so it runs next to anything else.
    kustomization = work / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("namespace: demo", f"namespace: {namespace}")
    )
    (work / "namespace.yaml").write_text(
        f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n"
    )
    service = work / "web" / "service.yaml"
    service.write_text(
        "\n".join(line for line in service.read_text().splitlines() if "nodePort" not in line)
    )
    first = commit_all(work, "own namespace")

    ok(recon(docker_server, "repo", "create", name, "--interval", "2s", *data))
    git(
        work,
        "remote",
        "add",
        "recon",
        str(docker_server.data_dir.resolve() / "repos" / f"{name}.git"),
    )
    assert git(work, "push", "-q", "recon", "main", check=False).returncode == 0
    assert "Hello from Recon" in page(kubectl, namespace)

    # list, get and status show it synced and healthy, down to its pods.
    listed = ok(recon(docker_server, "app", "list", *data))
    row = next(line for line in listed.splitlines() if line.startswith(name))
    assert row.split()[1:4] == ["Synced", "Healthy", first[:12]]
    assert "auto (prune, self-heal)" in row
    got = ok(
        recon(docker_server, "app", "get", name, "--kubeconfig", str(docker_server.kubeconfig))
    )
    assert "deployment.apps/web" in got and "Healthy" in got
    status = ok(
        recon(docker_server, "status", name, env={"KUBECONFIG": str(docker_server.kubeconfig)})
    )
    assert f"application/{name} Healthy Synced" in status
    assert "deployment.apps/web Healthy Synced" in status
    assert status.count("pod/web-") == 2 and "Running  ready 1/1" in status
    assert "cronjob.batch/report" in status

    # A second version: three replicas and a new page.
    deployment, configmap = work / "web" / "deployment.yaml", work / "web" / "configmap.yaml"
    deployment.write_text(deployment.read_text().replace("replicas: 2", "replicas: 3"))
    configmap.write_text(configmap.read_text().replace("Hello from Recon", "Version two"))
    second = commit_all(work, "version two")
    assert git(work, "push", "-q", "recon", "main", check=False).returncode == 0
    assert kubectl.json("-n", namespace, "get", "deployment", "web")["spec"]["replicas"] == 3
    wait_until(lambda: "Version two" in page(kubectl, namespace), 90, "the new page served")

    history = ok(recon(docker_server, "history", name, *data))
    lines = [line for line in history.splitlines()[1:] if line.strip()]
    assert f"{second[:12]} *" in lines[-1] and "Succeeded" in lines[-1]
    assert any(first[:12] in line for line in lines[:-1])

    # Rollback: the first version again, and automated sync off so it stays.
    rolled = recon(docker_server, "rollback", name, *data)
    ok(rolled)
    assert "automated sync of default/" in rolled.stdout and "health Healthy" in rolled.stdout
    assert kubectl.json("-n", namespace, "get", "deployment", "web")["spec"]["replicas"] == 2
    wait_until(lambda: "Hello from Recon" in page(kubectl, namespace), 90, "the old page back")
    app = kubectl.json("get", "applications.recon.dev", name)
    assert app["spec"]["syncPolicy"].get("automated") is None
    assert "recon.dev/automated-before-rollback" in app["metadata"]["annotations"]
    # Several intervals later it is still rolled back: nothing synced the branch head.
    wait_until(
        lambda: (
            kubectl.json("get", "applications.recon.dev", name)["status"]["sync"]["status"]
            == "OutOfSync"
        ),
        30,
        "the Application compared with git and found it OutOfSync",
    )
    assert kubectl.json("-n", namespace, "get", "deployment", "web")["spec"]["replicas"] == 2

    # recon diff APP: what a sync would change, exit 1.
    diff = recon(docker_server, "diff", name, *data)
    assert diff.returncode == 1, diff.stderr
    assert "-  replicas: 2" in diff.stdout and "+  replicas: 3" in diff.stdout
    assert "Version two" in diff.stdout

    # A dry-run sync changes nothing, and is no deployment in the history.
    before = kubectl.json("get", "applications.recon.dev", name)["status"]["history"]
    dry = recon(docker_server, "sync", name, "--dry-run", *data)
    ok(dry)
    assert "sync Succeeded: dry run: successfully synced" in dry.stdout
    assert "deployment.apps/web configured" in dry.stdout
    assert kubectl.json("-n", namespace, "get", "deployment", "web")["spec"]["replicas"] == 2
    app = kubectl.json("get", "applications.recon.dev", name)
    assert app["status"]["history"] == before
    assert app["status"]["operationState"]["dryRun"] is True

    # Automated again: back to the head of main, and nothing left to diff.
    ok(recon(docker_server, "app", "set", name, "--sync-policy", "automated", *data))
    app = kubectl.json("get", "applications.recon.dev", name)
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "recon.dev/automated-before-rollback" not in app["metadata"].get("annotations", {})
    wait_until(
        lambda: kubectl.json("-n", namespace, "get", "deployment", "web")["spec"]["replicas"] == 3,
        60,
        "automated sync to the head of main",
    )
    wait_until(lambda: recon(docker_server, "diff", name, *data).returncode == 0, 60, "no diff")

    # recon sync follows a sync to health.
    synced = recon(docker_server, "sync", name, "--prune", *data)
    ok(synced)
    assert "sync Succeeded" in synced.stdout and "health Healthy" in synced.stdout

    # delete --orphan keeps the objects; a new Application takes them over; deleting that one
    # removes them.
    ok(recon(docker_server, "app", "delete", name, "--orphan", *data))
    assert kubectl.run("get", "applications.recon.dev", name, check=False).returncode != 0
    assert kubectl.json("-n", namespace, "get", "deployment", "web")["spec"]["replicas"] == 3
    other = f"{name}-b"
    remote = f"file://{docker_server.data_dir.resolve() / 'repos' / f'{name}.git'}"
    created = ok(
        recon(docker_server, "app", "create", other, "--repo", remote, "--revision", "main", *data)
    )
    assert f"recon sync default/{other}" in created
    ok(recon(docker_server, "sync", other, *data))
    live = kubectl.json("-n", namespace, "get", "deployment", "web")
    assert live["metadata"]["annotations"]["recon.dev/application"] == f"default/{other}"
    ok(recon(docker_server, "app", "delete", other, *data))
    wait_until(
        lambda: (
            kubectl.run("-n", namespace, "get", "deployment", "web", check=False).returncode != 0
        ),
        60,
        "the Deployment deleted with its Application",
    )


def test_client_commands_say_what_is_wrong(docker_server: ReconServer, tmp_path: Path) -> None:
    data = ["--data-dir", str(docker_server.data_dir)]
    missing = recon(docker_server, "status", "nope", *data)
    assert missing.returncode == 1 and "no Application default/nope" in missing.stderr
    bad = recon(
        docker_server, "app", "create", "x", "--repo", "file:///x", "--interval", "soon", *data
    )
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    diff = recon(docker_server, "diff", "nope", *data)
    assert diff.returncode == 2 and "no Application default/nope" in diff.stderr
    closed = tmp_path / "closed.kubeconfig"
    closed.write_text(
        docker_server.kubeconfig.read_text().replace(
            f"127.0.0.1:{docker_server.port}", f"127.0.0.1:{free_port()}"
        )
    )
    unreachable = recon(docker_server, "app", "list", "--kubeconfig", str(closed))
    assert unreachable.returncode == 1 and "cannot reach https://127.0.0.1:" in unreachable.stderr
