"""`recon repo create` + `git push` on `recon serve --runtime docker`: the push deploys and
streams the rollout, a push with a schema error is rejected and changes nothing, a file
removed in git is pruned."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import RECON, Kubectl, ReconServer
from tests.e2e.support import git

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"
IMAGE, OTHER_IMAGE = "recon.local/busybox:latest", "recon.local/pause:latest"


def _push(repo: Path) -> subprocess.CompletedProcess[str]:
    return git(repo, "push", "recon", "main", check=False)


def test_git_push_deploys_rejects_and_prunes(docker_server: ReconServer, tmp_path: Path) -> None:
    namespace = f"push-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    name = f"shop-{uuid.uuid4().hex[:4]}"
    created = subprocess.run(
        [*RECON, "repo", "create", name, "--data-dir", str(docker_server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    remote = docker_server.data_dir.resolve() / "repos" / f"{name}.git"
    assert f"git remote add recon {remote}" in created.stdout

    work = tmp_path / "work"
    shutil.copytree(TEMPLATE, work)
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
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "the template")
    git(work, "remote", "add", "recon", str(remote))

    pushed = _push(work)
    assert pushed.returncode == 0, pushed.stderr
    out = pushed.stderr  # git shows the hooks' output as "remote: ..." on stderr
    assert "is valid (6 objects)" in out
    assert "deployment.apps/web created" in out
    assert "sync Succeeded" in out
    assert "deployment.apps/web Healthy" in out and "health Healthy" in out
    node_port = kubectl.json("-n", namespace, "get", "service", "web")["spec"]["ports"][0][
        "nodePort"
    ]
    with urllib.request.urlopen(f"http://127.0.0.1:{node_port}/", timeout=5) as response:
        assert "Hello from Recon" in response.read().decode()

    # The CronJob runs on its minute.
    def report_ran() -> bool:
        jobs = kubectl.json("-n", namespace, "get", "jobs")["items"]
        return any((j.get("status") or {}).get("succeeded") for j in jobs)

    deadline = time.monotonic() + 90
    while not report_ran():
        assert time.monotonic() < deadline, "the CronJob did not run within 90 s"
        time.sleep(1)

    # A schema error: the push is rejected with the error, the live state is untouched.
    deployment = work / "web" / "deployment.yaml"
    good = deployment.read_text()
    deployment.write_text(good.replace("replicas: 2", 'replicas: "two"'))
    git(work, "commit", "-q", "-am", "broken")
    rejected = _push(work)
    assert rejected.returncode != 0
    assert "pre-receive hook declined" in rejected.stderr
    assert 'spec.replicas: "two"' in rejected.stderr
    assert kubectl.json("-n", namespace, "get", "deployment", "web")["spec"]["replicas"] == 2
    git(work, "reset", "-q", "--hard", "HEAD~1")

    # Three replicas of another image and no CronJob: the rollout is streamed, the
    # CronJob pruned.
    changed = good.replace("replicas: 2", "replicas: 3")
    deployment.write_text(changed.replace(IMAGE, OTHER_IMAGE))
    shutil.rmtree(work / "jobs")
    kustomization.write_text(
        "".join(
            line
            for line in kustomization.read_text().splitlines(keepends=True)
            if "cronjob" not in line
        )
    )
    git(work, "commit", "-q", "-am", "three replicas, no report")
    pushed = _push(work)
    assert pushed.returncode == 0, pushed.stderr
    assert "deployment.apps/web configured" in pushed.stderr
    assert "cronjob.batch/report pruned" in pushed.stderr
    assert "health Healthy" in pushed.stderr
    web = kubectl.json("-n", namespace, "get", "deployment", "web")
    assert web["status"]["availableReplicas"] == 3
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == OTHER_IMAGE
    pods = kubectl.json("-n", namespace, "get", "pods", "-l", "app=web")["items"]
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert {p["spec"]["containers"][0]["image"] for p in running} == {OTHER_IMAGE}
    gone = kubectl.run("-n", namespace, "get", "cronjob", "report", check=False)
    assert gone.returncode != 0
