"""The git repositories and manifests the GitOps benchmarks deploy, and the git they run.

Pure file writing and `git` plumbing, kept out of `bench.gitops` so the benchmark reads as
its measurements. Manifests are written as YAML text, one object per file, the way a user
keeps them in a repository:

- `object_set`: N objects, a third each ConfigMaps, Services and Deployments (a Service
  selects the pods of the Deployment of the same number, so it gets endpoints);
- `push_app`: one Deployment of one busybox replica whose pod template carries an env var
  `STAMP`, so changing the stamp makes a new pod.

Objects name their namespace; an owner (`<ns>/<app>`) puts Recon's ownership annotation
into the files themselves, so `kubectl apply -f` of the very same files, which would
otherwise remove an annotation it was never given, is as much a no-op as Recon's sync.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = [
    "GIT_IDENTITY",
    "IMAGE",
    "commit_all",
    "git",
    "init_repo",
    "object_set",
    "push_app",
]

IMAGE = "recon.local/busybox:latest"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@recon.dev",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@recon.dev",
}


def git(repo: Path, *args: str) -> str:
    """git in `repo` with the benchmark's identity; its stdout (it must succeed)."""
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_IDENTITY},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def commit_all(repo: Path, message: str) -> str:
    """Commit everything in `repo`; returns the new commit's SHA."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def init_repo(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")


def _metadata(name: str, namespace: str, owner: str | None) -> str:
    lines = [
        "metadata:",
        f"  name: {name}",
        f"  namespace: {namespace}",
        "  labels: {bench: gitops}",
    ]
    if owner:
        lines.append(f"  annotations: {{recon.dev/application: {owner}}}")
    return "\n".join(lines)


def _configmap(name: str, namespace: str, owner: str | None) -> str:
    meta = _metadata(name, namespace, owner)
    return f"apiVersion: v1\nkind: ConfigMap\n{meta}\ndata:\n  key: {name}\n  other: {'x' * 64}\n"


def _service(name: str, app: str, namespace: str, owner: str | None) -> str:
    return (
        f"apiVersion: v1\nkind: Service\n{_metadata(name, namespace, owner)}\n"
        f"spec:\n  selector: {{app: {app}}}\n  ports:\n  - {{port: 80, targetPort: 8080}}\n"
    )


def _deployment(
    name: str, namespace: str, owner: str | None, env: dict[str, str] | None = None
) -> str:
    env_lines = "".join(f"        - {{name: {k}, value: '{v}'}}\n" for k, v in (env or {}).items())
    return (
        f"apiVersion: apps/v1\nkind: Deployment\n{_metadata(name, namespace, owner)}\n"
        "spec:\n"
        "  replicas: 1\n"
        f"  selector: {{matchLabels: {{app: {name}}}}}\n"
        "  template:\n"
        f"    metadata: {{labels: {{app: {name}}}}}\n"
        "    spec:\n"
        "      terminationGracePeriodSeconds: 0\n"
        "      containers:\n"
        "      - name: app\n"
        f"        image: {IMAGE}\n"
        "        imagePullPolicy: IfNotPresent\n"
        "        command: [sleep, '3600']\n"
        "        ports: [{containerPort: 8080}]\n" + ("        env:\n" + env_lines if env else "")
    )


def object_set(
    folder: Path, count: int, namespace: str, owner: str | None, prefix: str = ""
) -> dict[str, int]:
    """`count` objects in `folder` (one file each): ConfigMaps, Services and Deployments in
    thirds (ConfigMaps take the remainder); returns how many of each kind."""
    folder.mkdir(parents=True, exist_ok=True)
    third = count // 3
    kinds = {"ConfigMap": count - 2 * third, "Service": third, "Deployment": third}
    for i in range(kinds["ConfigMap"]):
        name = f"{prefix}cm-{i:04d}"
        (folder / f"{name}.yaml").write_text(_configmap(name, namespace, owner))
    for i in range(third):
        app = f"{prefix}dep-{i:04d}"
        svc = f"{prefix}svc-{i:04d}"
        (folder / f"{svc}.yaml").write_text(_service(svc, app, namespace, owner))
        (folder / f"{app}.yaml").write_text(_deployment(app, namespace, owner))
    return kinds


def push_app(folder: Path, name: str, stamp: int) -> None:
    """The git-push app: one busybox Deployment `name`, its pod template stamped `stamp`."""
    folder.mkdir(parents=True, exist_ok=True)
    text = _deployment(name, "default", None, env={"STAMP": str(stamp)})
    (folder / "deployment.yaml").write_text(text)
