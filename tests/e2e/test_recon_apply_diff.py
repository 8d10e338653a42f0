"""`recon apply` / `recon diff` against a real server, taking turns with the real kubectl."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e

MANIFESTS = Path(__file__).parent / "manifests"
RECON = [sys.executable, "-m", "reconciler.cli"]


def recon(server: ReconServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RECON, *args, "--kubeconfig", str(server.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(tmp_path: Path, name: str, docs: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return path


def app(
    image: str = "busybox:1.36",
    env: dict[str, str] | None = None,
    extra_port: bool = True,
    password: str = "s3cret",
) -> list[dict]:
    env = env if env is not None else {"MODE": "blue", "LEVEL": "info"}
    ports = [{"containerPort": 8080}] + ([{"containerPort": 9090}] if extra_port else [])
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "turns"}},
        # `data`, not `stringData`: with stringData even kubectl alone reports "configured"
        # on every apply, since the server turns it into data.
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "turns"},
            "data": {"password": base64.b64encode(password.encode()).decode()},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "turns"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": image,
                                "ports": ports,
                                "env": [{"name": k, "value": v} for k, v in env.items()],
                            }
                        ]
                    },
                },
            },
        },
    ]


def test_recon_then_kubectl_sees_nothing_to_do(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    path = write(tmp_path, "app.yaml", app())
    first = recon(server, "apply", str(path))
    assert first.returncode == 0, first.stderr
    assert "deployment.apps/web created" in first.stdout
    # The last-applied annotation is byte for byte kubectl's: kubectl finds nothing to change.
    out = kubectl.run("apply", "-f", str(path)).stdout
    assert "deployment.apps/web unchanged" in out and "secret/creds unchanged" in out
    assert kubectl.run("diff", "-f", str(path), check=False).returncode == 0


def test_kubectl_then_recon_ends_as_if_kubectl_did_both(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    kubectl.run("apply", "-f", str(write(tmp_path, "v1.yaml", app())))
    kubectl.run(
        "patch",
        "deployment",
        "web",
        "-n",
        "turns",
        "--type=strategic",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"web","env":'
        '[{"name":"INJECTED","value":"x"}]}]}}}}',
    )
    changed = write(
        tmp_path, "v2.yaml", app(image="busybox:1.37", env={"MODE": "green"}, extra_port=False)
    )
    applied = recon(server, "apply", str(changed))
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/web configured" in applied.stdout
    live = kubectl.json("get", "deployment", "web", "-n", "turns")
    web = live["spec"]["template"]["spec"]["containers"][0]
    assert web["image"] == "busybox:1.37"
    assert {e["name"]: e["value"] for e in web["env"]} == {"MODE": "green", "INJECTED": "x"}
    assert [p["containerPort"] for p in web["ports"]] == [8080]
    # kubectl, comparing against the annotation Recon wrote, agrees nothing is left to do.
    assert kubectl.run("diff", "-f", str(changed), check=False).returncode == 0


def test_recon_diff_exit_codes_masking_and_readable_changes(
    server: ReconServer, tmp_path: Path
) -> None:
    base = write(tmp_path, "base.yaml", app())
    assert recon(server, "apply", str(base)).returncode == 0
    same = recon(server, "diff", str(base))
    assert same.returncode == 0, same.stdout + same.stderr
    changed = write(
        tmp_path, "changed.yaml", app(image="busybox:9.9", extra_port=False, password="hunter2")
    )
    diff = recon(server, "diff", str(changed))
    assert diff.returncode == 1, diff.stderr
    assert "-        image: busybox:1.36\n+        image: busybox:9.9\n" in diff.stdout
    assert "-        - containerPort: 9090\n" in diff.stdout  # removed from git: removed
    assert "*** (before)" in diff.stdout and "*** (after)" in diff.stdout
    for secret in ("hunter2", "s3cret"):
        assert secret not in diff.stdout
        assert base64.b64encode(secret.encode()).decode() not in diff.stdout
    assert "2 to change" in diff.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (MANIFESTS / "10-app.yaml").read_text().replace("replicas: 2", "replicas: two")
    )
    bad = recon(server, "diff", str(broken))
    assert bad.returncode == 2 and "replicas" in bad.stderr and bad.stdout == ""


def test_invalid_set_applies_nothing(server: ReconServer, kubectl: Kubectl, tmp_path: Path) -> None:
    docs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "fine-cm", "namespace": "default"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "nope"},
            "spec": {"replicas": "many"},
        },
    ]
    result = recon(server, "apply", str(write(tmp_path, "mixed.yaml", docs)))
    assert result.returncode == 1 and "nothing was applied" in result.stderr
    assert f"{tmp_path}/mixed.yaml:" in result.stderr
    assert kubectl.run("get", "configmap", "fine-cm", check=False).returncode == 1


def test_prune_removes_what_left_the_set(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    def cm(name: str) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"k": name},
        }

    folder = tmp_path / "set"
    folder.mkdir()
    write(folder, "a.yaml", [cm("keep-me"), cm("drop-me")])
    assert recon(server, "apply", "--prune", str(folder)).returncode == 0
    write(folder, "a.yaml", [cm("keep-me")])
    preview = recon(server, "diff", "--prune", str(folder))
    assert preview.returncode == 1 and "1 to prune" in preview.stdout
    result = recon(server, "apply", "--prune", str(folder))
    assert "configmap/drop-me pruned" in result.stdout, result.stderr
    assert kubectl.run("get", "configmap", "drop-me", check=False).returncode == 1
    assert kubectl.run("get", "configmap", "keep-me").returncode == 0


def test_apply_from_a_git_repository(server: ReconServer, kubectl: Kubectl, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    write(
        repo / "deploy",
        "cm.yaml",
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "from-git", "namespace": "default"},
                "data": {"v": "1"},
            }
        ],
    )
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "one"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    result = recon(
        server,
        "apply",
        "--repo",
        f"file://{repo}",
        "--path",
        "deploy",
        "--revision",
        "main",
        "--data-dir",
        str(tmp_path / "recon"),
    )
    assert result.returncode == 0, result.stderr
    assert kubectl.json("get", "configmap", "from-git")["data"] == {"v": "1"}
