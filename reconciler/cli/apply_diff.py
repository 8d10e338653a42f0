"""`recon apply` and `recon diff`: one-shot apply of a manifest set, and its dry run.

Both validate everything first (nothing is applied, nothing is shown as fine, when anything is
invalid), then go through the same `gitops.apply.Applier` — `diff` with a server-side dry
run. Sources: paths, or `--repo URL [--path P] [--revision REF]` fetched with git.
Exit codes follow kubectl: apply 0/1; diff 0 (no differences), 1 (differences), 2 (error).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from reconciler.client.errors import ClientError
from reconciler.client.http import HttpClient
from reconciler.client.kubeconfig import KubeconfigError
from reconciler.gitops.apply import Applier, ObjectResult
from reconciler.gitops.render import Loaded, load_and_validate
from reconciler.manifests.loader import Manifest
from reconciler.merge.render import colorize, unified_diff
from reconciler.source.git import GitCache, GitSourceError

DEFAULT_DATA_DIR = Path(os.environ.get("RECON_DATA_DIR", "~/.recon")).expanduser()


class CommandError(Exception):
    """A failure to report and exit with the command's error code."""


def make_client(kubeconfig: str | None, data_dir: Path) -> HttpClient:
    """--kubeconfig, then KUBECONFIG, then the kubeconfig `recon serve` wrote in --data-dir."""
    if kubeconfig:
        return HttpClient.from_kubeconfig(kubeconfig)
    if os.environ.get("KUBECONFIG"):
        return HttpClient.from_kubeconfig()
    written = data_dir.expanduser() / "kubeconfig"
    if written.exists():
        return HttpClient.from_kubeconfig(written)
    return HttpClient.from_kubeconfig()


def resolve_paths(
    paths: Sequence[str], repo: str | None, path: str, revision: str, data_dir: Path
) -> tuple[list[str], str | None]:
    """The local paths to load, and the git revision they came from (if any)."""
    if repo:
        if paths:
            raise CommandError("give either PATH arguments or --repo, not both")
        try:
            checkout = GitCache(data_dir.expanduser() / "cache" / "git").checkout(repo, revision)
        except GitSourceError as e:
            raise CommandError(str(e)) from None
        return [str(checkout.path / path)], checkout.revision
    if not paths:
        raise CommandError("give PATH arguments (files, directories, - for stdin) or --repo")
    return list(paths), None


def _kinds(manifests: Sequence[Manifest]) -> list[tuple[str, str]]:
    kinds = {(m.api_version, m.kind) for m in manifests}
    kinds |= {
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "ServiceAccount"),
    }
    return sorted(kinds)


def _apply_set_name(paths: Sequence[str], repo: str | None, given: str | None) -> str:
    if given:
        return given
    if repo:
        return repo.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return Path(paths[0]).resolve().name if paths and paths[0] != "-" else "stdin"


def common_options(f: Any) -> Any:
    for option in reversed(
        [
            click.argument("paths", nargs=-1),
            click.option("--repo", default=None, help="Git URL to take the manifests from."),
            click.option(
                "--path", "repo_path", default=".", show_default=True, help="Folder inside --repo."
            ),
            click.option(
                "--revision",
                default="HEAD",
                show_default=True,
                help="Branch, tag or commit of --repo.",
            ),
            click.option(
                "--prune",
                is_flag=True,
                help="Also delete objects this apply set created that left the set.",
            ),
            click.option(
                "--apply-set",
                default=None,
                help="Name of the apply set for --prune (default: the folder or repo).",
            ),
            click.option("--kubeconfig", default=None, help="Kubeconfig of the target cluster."),
            click.option(
                "--data-dir",
                type=click.Path(path_type=Path),
                default=DEFAULT_DATA_DIR,
                show_default=True,
                help="Where `recon serve` keeps its kubeconfig.",
            ),
            click.option(
                "--kubernetes-version",
                default=None,
                help="Schema version to validate against (default: newest).",
            ),
        ]
    ):
        f = option(f)
    return f


async def _run_apply(
    paths: list[str],
    kubeconfig: str | None,
    data_dir: Path,
    kubernetes_version: str | None,
    prune: bool,
    apply_set: str,
    dry_run: bool,
) -> tuple[Loaded, list[ObjectResult]]:
    try:
        client = make_client(kubeconfig, data_dir)
    except KubeconfigError as e:
        raise CommandError(str(e)) from None
    try:
        loaded = await load_and_validate(client, paths, kubernetes_version)
        if loaded.errors:
            return loaded, []
        applier = Applier(client, default_namespace=getattr(client, "default_namespace", "default"))
        results = await applier.apply(
            loaded.manifests, dry_run=dry_run, apply_set=apply_set if prune else None
        )
        if prune and loaded.manifests:  # an empty render never prunes
            candidates = await applier.prune_candidates(
                loaded.manifests, apply_set, _kinds(loaded.manifests)
            )
            results += await applier.prune(candidates, dry_run=dry_run)
        return loaded, results
    except ClientError as e:
        raise CommandError(e.message) from None
    finally:
        await client.close()


def _execute(
    command: str,
    error_code: int,
    paths: tuple[str, ...],
    repo: str | None,
    repo_path: str,
    revision: str,
    prune: bool,
    apply_set: str | None,
    kubeconfig: str | None,
    data_dir: Path,
    kubernetes_version: str | None,
    dry_run: bool,
) -> list[ObjectResult]:
    """Load, validate and apply (or dry-run); exits with `error_code` on any error before
    the first object, naming every problem, so nothing half-done is reported as fine."""
    try:
        local, _ = resolve_paths(paths, repo, repo_path, revision, data_dir)
        loaded, results = asyncio.run(
            _run_apply(
                local,
                kubeconfig,
                data_dir,
                kubernetes_version,
                prune,
                _apply_set_name(paths, repo, apply_set),
                dry_run=dry_run,
            )
        )
    except CommandError as e:
        click.echo(f"recon {command}: {e}", err=True)
        sys.exit(error_code)
    if loaded.errors:
        for line in loaded.errors:
            click.echo(line, err=True)
        outcome = "no diff shown" if dry_run else "nothing was applied"
        click.echo(f"recon {command}: {len(loaded.errors)} errors; {outcome}", err=True)
        sys.exit(error_code)
    return results


@click.command("apply")
@common_options
def apply_command(
    paths: tuple[str, ...],
    repo: str | None,
    repo_path: str,
    revision: str,
    prune: bool,
    apply_set: str | None,
    kubeconfig: str | None,
    data_dir: Path,
    kubernetes_version: str | None,
) -> None:
    """Apply manifests with kubectl's three-way merge (validating everything first)."""
    results = _execute(
        "apply",
        1,
        paths,
        repo,
        repo_path,
        revision,
        prune,
        apply_set,
        kubeconfig,
        data_dir,
        kubernetes_version,
        dry_run=False,
    )
    failed = False
    for r in results:
        if r.action == "failed":
            failed = True
            click.echo(f"{r.label} failed: {r.error} ({r.where})", err=True)
        else:
            click.echo(f"{r.label} {r.action}")
    sys.exit(1 if failed else 0)


@click.command("diff")
@common_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def diff_command(
    paths: tuple[str, ...],
    repo: str | None,
    repo_path: str,
    revision: str,
    prune: bool,
    apply_set: str | None,
    kubeconfig: str | None,
    data_dir: Path,
    kubernetes_version: str | None,
    output: str,
) -> None:
    """Show what `recon apply PATHS` or a sync of Application APP would change: exit 0
    (none), 1 (changes), 2 (error).

    \b
    recon diff web/ jobs/     # files and folders (or --repo URL)
    recon diff shop           # Application shop: an argument that is no file or folder
    """
    if len(paths) == 1 and not repo and paths[0] != "-" and not Path(paths[0]).exists():
        from reconciler.cli.app_ops import diff_application  # it builds on this module

        sys.exit(diff_application(paths[0], "default", kubeconfig, data_dir, output))
    results = _execute(
        "diff",
        2,
        paths,
        repo,
        repo_path,
        revision,
        prune,
        apply_set,
        kubeconfig,
        data_dir,
        kubernetes_version,
        dry_run=True,
    )
    sys.exit(show_diffs(results, output, prune))


def show_diffs(results: Sequence[ObjectResult], output: str, show_prune: bool) -> int:
    """Print the diff of each object a dry run changed and a summary; returns kubectl
    diff's exit code: 0 no differences, 1 differences, 2 an object failed."""
    errors = [r for r in results if r.action == "failed"]
    if errors:
        for r in errors:
            click.echo(f"{r.label} failed: {r.error} ({r.where})", err=True)
        return 2
    counts = {"create": 0, "change": 0, "unchanged": 0, "prune": 0}
    documents = []
    color = sys.stdout.isatty() and output == "text"
    for r in results:
        key = f"{r.api_version.replace('/', '.')}.{r.kind}.{r.namespace or '_'}.{r.name}"
        after = None if r.action == "pruned" else r.after
        text = unified_diff(key, r.before, after)
        bucket = {"created": "create", "configured": "change", "pruned": "prune"}.get(
            r.action, "unchanged"
        )
        if bucket == "change" and not text:
            bucket = "unchanged"
        counts[bucket] += 1
        if text:
            documents.append(
                {"object": r.label, "namespace": r.namespace, "action": bucket, "diff": text}
            )
            if output == "text":
                click.echo(colorize(text) if color else text, nl=False)
    summary = (
        f"{counts['create']} to create, {counts['change']} to change, "
        f"{counts['unchanged']} unchanged" + (f", {counts['prune']} to prune" if show_prune else "")
    )
    if output == "json":
        click.echo(json.dumps({"summary": counts, "objects": documents}, indent=2))
    else:
        click.echo(summary, err=not documents)
    return 1 if documents else 0
