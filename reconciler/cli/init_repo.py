"""`recon init DIR`: a ready GitOps repository to start from, committed and ready to push.

It is a copy of the project's `repo-template/` (a web Deployment + Service + ConfigMap and a
CronJob, tied together by a kustomization), made a git repository on `main` with one commit,
so `recon repo create NAME` and `git push` deploy it at once.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click

from reconciler.source.hosted import DEFAULT_BRANCH

__all__ = ["TEMPLATE", "init_command", "init_repository"]

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"
# Used only when git has no identity configured, so the first commit never fails.
_FALLBACK_IDENTITY = ("Recon", "recon@localhost")


class InitError(Exception):
    pass


def _git(target: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(target), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise InitError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def init_repository(target: Path, git: bool = True, template: Path = TEMPLATE) -> list[str]:
    """Copy the template into `target` (new or empty) and, with `git`, commit it on the
    default branch; returns the files written, relative to `target`."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InitError(f"{target} exists and is not an empty folder")
    if not template.is_dir():
        raise InitError(f"the repository template is missing: {template}")
    shutil.copytree(template, target, dirs_exist_ok=True)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    if git:
        _git(target, "init", "-q", "-b", DEFAULT_BRANCH)
        _git(target, "add", "-A")
        identity: list[str] = []
        configured = subprocess.run(
            ["git", "-C", str(target), "config", "user.email"],
            capture_output=True,
            text=True,
            check=False,
        )
        if not configured.stdout.strip():
            name, email = _FALLBACK_IDENTITY
            identity = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
        _git(target, *identity, "commit", "-q", "-m", "A new Recon repository (recon init)")
    return files


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--no-git", is_flag=True, help="Only copy the files; no git repository.")
def init_command(directory: Path, no_git: bool) -> None:
    """Start a GitOps repository in DIRECTORY from Recon's template: a web app (Deployment,
    Service on NodePort 30080, ConfigMap) and a CronJob, committed on main."""
    try:
        files = init_repository(directory, git=not no_git)
    except InitError as e:
        raise click.ClickException(str(e)) from None
    for name in files:
        click.echo(f"  {name}")
    click.echo(f"created {directory} ({len(files)} files{'' if no_git else ', committed on main'})")
    click.echo("deploy it:")
    click.echo("  recon repo create NAME            # prints the remote to add")
    click.echo(f"  cd {directory} && git remote add recon <remote> && git push recon main")
