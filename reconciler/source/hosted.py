"""Repositories Recon hosts itself: `git push` to deploy.

`recon repo create NAME` makes a bare repository at `<data-dir>/repos/NAME.git` (default
branch `main`) with two hooks, each a two-line shell script that runs `recon hook ...` with
the Python that created it:

    pre-receive   validates the pushed commit of the deployed branch (render + every schema
                  check) and rejects the whole push, listing each error with its file:line,
                  when anything is invalid: a bad commit never reaches the repository;
    post-receive  asks for a sync of exactly the pushed commit and streams its progress
                  into the `git push` output until the app is healthy or a timeout.

Git runs pre-receive with the pushed objects in a quarantine directory it names in the
environment; `export_tree` reads the commit from there with `git archive`, so validation
sees exactly what would be stored. Pure git plumbing: no knowledge of Kubernetes here.
"""

from __future__ import annotations

import io
import re
import shlex
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_BRANCH",
    "HostedRepoError",
    "RefUpdate",
    "create_repo",
    "export_tree",
    "parse_ref_updates",
    "repo_path",
]

DEFAULT_BRANCH = "main"
ZERO = "0" * 40
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class HostedRepoError(Exception):
    pass


@dataclass(frozen=True)
class RefUpdate:
    """One line of a hook's stdin: `<old-sha> <new-sha> <ref>`."""

    old: str
    new: str
    ref: str

    @property
    def deleted(self) -> bool:
        return self.new == ZERO

    @property
    def branch(self) -> str | None:
        prefix = "refs/heads/"
        return self.ref[len(prefix) :] if self.ref.startswith(prefix) else None


def parse_ref_updates(text: str) -> list[RefUpdate]:
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            updates.append(RefUpdate(*parts))
    return updates


def repo_path(data_dir: Path, name: str) -> Path:
    return data_dir / "repos" / f"{name}.git"


def _hook(stage: str, name: str, data_dir: Path) -> str:
    command = [
        sys.executable,
        "-m",
        "reconciler.cli",
        "hook",
        stage,
        "--data-dir",
        str(data_dir),
        "--app",
        name,
    ]
    return "#!/bin/sh\n# Installed by `recon repo create`.\nexec " + shlex.join(command) + "\n"


def create_repo(data_dir: Path, name: str) -> Path:
    """A new bare repository with Recon's hooks; refuses a bad name or an existing repo."""
    if not _NAME.match(name):
        raise HostedRepoError(
            f"repository name {name!r} must be a DNS label (lower-case letters, digits, '-'): "
            "it also names the Application"
        )
    path = repo_path(data_dir, name)
    if path.exists():
        raise HostedRepoError(f"repository {path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "--quiet", "--bare", f"--initial-branch={DEFAULT_BRANCH}", str(path)],
        check=True,
        capture_output=True,
    )
    for stage in ("pre-receive", "post-receive"):
        hook = path / "hooks" / stage
        hook.write_text(_hook(stage, name, data_dir.resolve()))
        hook.chmod(0o755)
    return path


def export_tree(repo: Path, sha: str, target: Path) -> None:
    """The files of commit `sha` into `target` (works inside a pre-receive hook, whose
    quarantined objects git makes visible through the environment)."""
    archive = subprocess.run(
        ["git", "--git-dir", str(repo), "archive", "--format=tar", sha],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise HostedRepoError(
            f"cannot read commit {sha[:12]}: {archive.stderr.decode(errors='replace').strip()}"
        )
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
