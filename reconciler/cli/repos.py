"""`recon repo create NAME` and the hooks that make `git push` deploy.

    recon repo create shop          # a bare repo + an Application on it
    git remote add recon ~/.recon/repos/shop.git
    git push recon main             # validated, synced, rollout streamed back

The pre-receive hook rejects a push whose deployed branch does not validate (every error
with its file:line; nothing is stored, nothing applied). The post-receive hook syncs exactly
the pushed commit and streams what was created, changed and pruned, then the rollout, until
the app is healthy or `RECON_PUSH_TIMEOUT` seconds (default 120) pass; the push itself has
already succeeded by then, so a slow rollout never blocks git.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from reconciler.cli.apply_diff import DEFAULT_DATA_DIR, make_client
from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, ClientError, NotFoundError
from reconciler.client.kubeconfig import KubeconfigError
from reconciler.gitops.application import API_VERSION, KIND, AppSpec
from reconciler.gitops.follow import FollowTimeout, follow_health, follow_sync, request_sync
from reconciler.gitops.render import load_and_validate, source_paths
from reconciler.source.hosted import (
    DEFAULT_BRANCH,
    HostedRepoError,
    RefUpdate,
    create_repo,
    export_tree,
    parse_ref_updates,
    repo_path,
)

__all__ = ["hook_group", "repo_group"]

JSONDict = dict[str, Any]

_APP_NAMESPACE = "default"


def _data_dir_option(f: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help="Where `recon serve` keeps its state (and the hosted repositories).",
    )(f)


def application(name: str, repo: Path, path: str, interval: str) -> JSONDict:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": _APP_NAMESPACE,
            "labels": {"recon.dev/hosted-repo": name},
        },
        "spec": {
            "source": {
                "repoURL": f"file://{repo}",
                "targetRevision": DEFAULT_BRANCH,
                "path": path,
                "directory": {"recurse": True},
            },
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "interval": interval,
            },
        },
    }


@click.group("repo")
def repo_group() -> None:
    """Repositories hosted by Recon: push to deploy."""


@repo_group.command("create")
@click.argument("name")
@click.option("--path", default=".", show_default=True, help="Folder of the repo to deploy.")
@click.option("--interval", default="60s", show_default=True, help="Drift check interval.")
@click.option("--kubeconfig", default=None, help="Kubeconfig of the server.")
@_data_dir_option
def create_command(
    name: str, path: str, interval: str, kubeconfig: str | None, data_dir: Path
) -> None:
    """Create a hosted repository NAME and an Application deploying it."""
    data_dir = data_dir.expanduser().resolve()
    try:
        repo = create_repo(data_dir, name)
    except HostedRepoError as e:
        raise click.ClickException(str(e)) from None
    try:
        asyncio.run(
            _create_application(kubeconfig, data_dir, application(name, repo, path, interval))
        )
    except click.ClickException:
        shutil.rmtree(repo, ignore_errors=True)  # nothing half-made is left behind
        raise
    click.echo(f"created {repo} and Application {_APP_NAMESPACE}/{name}")
    click.echo("push to deploy:")
    click.echo(f"  git remote add recon {repo}")
    click.echo(f"  git push recon {DEFAULT_BRANCH}")


async def _create_application(kubeconfig: str | None, data_dir: Path, app: JSONDict) -> None:
    try:
        client = make_client(kubeconfig, data_dir)
    except KubeconfigError as e:
        raise click.ClickException(f"cannot reach the server: {e}") from None
    try:
        await client.create(app)
    except AlreadyExistsError:
        raise click.ClickException(
            f"an Application {_APP_NAMESPACE}/{app['metadata']['name']} already exists"
        ) from None
    except (ClientError, OSError) as e:
        raise click.ClickException(f"cannot create the Application: {e}") from None
    finally:
        await client.close()


@repo_group.command("list")
@_data_dir_option
def list_command(data_dir: Path) -> None:
    """The hosted repositories and their remotes."""
    root = data_dir.expanduser().resolve() / "repos"
    for repo in sorted(root.glob("*.git")) if root.is_dir() else []:
        click.echo(f"{repo.name.removesuffix('.git')}\t{repo}")


@click.group("hook", hidden=True)
def hook_group() -> None:
    """Run by the hooks of hosted repositories (not by people)."""


def _say(line: str) -> None:
    click.echo(f"recon: {line}")
    sys.stdout.flush()


async def _app(client: Client | None, name: str) -> AppSpec | None:
    if client is None:
        return None
    try:
        return AppSpec.from_object(await client.get(API_VERSION, KIND, name, _APP_NAMESPACE))
    except (ClientError, OSError):
        return None


def _deployed(updates: list[RefUpdate], app: AppSpec | None) -> RefUpdate | None:
    branch = app.target_revision if app is not None else DEFAULT_BRANCH
    if branch == "HEAD":
        branch = DEFAULT_BRANCH
    for update in updates:
        if update.branch == branch and not update.deleted:
            return update
    for update in updates:
        _say(f"{update.ref} is not deployed (this repository deploys {branch})")
    return None


def _client(data_dir: Path) -> Client | None:
    try:
        return make_client(None, data_dir)
    except KubeconfigError:
        return None


@hook_group.command("pre-receive")
@click.option("--app", "name", required=True)
@_data_dir_option
def pre_receive(name: str, data_dir: Path) -> None:
    """Reject a push whose deployed commit does not validate."""
    updates = parse_ref_updates(sys.stdin.read())
    data_dir = data_dir.expanduser().resolve()
    repo = repo_path(data_dir, name)
    with tempfile.TemporaryDirectory(prefix="recon-push-") as tmp:
        tree = Path(tmp).resolve()
        sys.exit(asyncio.run(_pre_receive(name, data_dir, repo, tree, updates)))


def _checkout(repo: Path, sha: str, tree: Path, path: str) -> list[str]:
    export_tree(repo, sha, tree)
    return source_paths(tree, path, recurse=True)


async def _pre_receive(
    name: str, data_dir: Path, repo: Path, tree: Path, updates: list[RefUpdate]
) -> int:
    client = _client(data_dir)
    try:
        app = await _app(client, name)
        update = _deployed(updates, app)
        if update is None:
            return 0
        try:
            path = app.path if app else "."
            paths = await asyncio.to_thread(_checkout, repo, update.new, tree, path)
        except (HostedRepoError, ValueError) as e:
            _say(f"push rejected: {e}")
            return 1
        loaded = await load_and_validate(
            client,
            paths,
            None,
            # the push is judged as the sync will judge it
            validate=app.validate if app else True,
            skip_missing=app.skip_dry_run_on_missing_resource if app else False,
        )
        errors = [e.replace(f"{tree}/", "") for e in loaded.errors]
        if errors:
            _say(f"push rejected: {len(errors)} error(s) in {update.new[:12]}, nothing deployed")
            for error in errors:
                _say(f"  {error}")
            return 1
        _say(f"{update.new[:12]} is valid ({len(loaded.manifests)} objects)")
        return 0
    finally:
        if client is not None:
            await client.close()


@hook_group.command("post-receive")
@click.option("--app", "name", required=True)
@_data_dir_option
def post_receive(name: str, data_dir: Path) -> None:
    """Sync the pushed commit and stream the rollout into the push output."""
    updates = parse_ref_updates(sys.stdin.read())
    timeout = float(os.environ.get("RECON_PUSH_TIMEOUT", "120"))
    sys.exit(asyncio.run(_post_receive(name, data_dir.expanduser(), updates, timeout)))


async def _post_receive(name: str, data_dir: Path, updates: list[RefUpdate], timeout: float) -> int:
    client = _client(data_dir)
    if client is None:
        _say("the server is not reachable: the push is stored and deploys when it is back")
        return 0
    try:
        app = await _app(client, name)
        update = _deployed(updates, app)
        if update is None:
            return 0
        _say(f"syncing {update.new[:12]} to {_APP_NAMESPACE}/{name}")
        requested = await request_sync(
            client, _APP_NAMESPACE, name, revision=update.new, prune=True, initiated_by="git push"
        )
        state = await follow_sync(client, _APP_NAMESPACE, name, requested, _say, timeout)
        if state.get("phase") != "Succeeded":
            return 0  # the push is stored either way; the output said why it did not deploy
        await follow_health(
            client,
            _APP_NAMESPACE,
            name,
            _say,
            timeout,
            revision=update.new,
            after_request=requested,
        )
        return 0
    except NotFoundError:
        _say(f"no Application {_APP_NAMESPACE}/{name}: nothing deployed")
        return 0
    except (FollowTimeout, ClientError, OSError) as e:
        _say(f"stopped following: {e}")
        return 0
    finally:
        await client.close()
