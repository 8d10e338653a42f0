"""`recon sync|diff|status|history|rollback APP`: what Argo CD users do to one Application.

`sync` and `rollback` write a sync request (the Application's `operation`) and follow it:
the controller — in `recon serve`, or `recon operator` next to a remote cluster — carries it
out; these commands only read and patch the Application, so they work the same against
both. `diff` renders the Application's source here, with the controller's own engine, and
asks the server for a dry run of every object.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from reconciler.cli.app_view import (
    WORKLOAD_KINDS,
    ObjectNode,
    console,
    descendants,
    history_table,
    resource_key,
    status_tree,
)
from reconciler.cli.apply_diff import show_diffs
from reconciler.cli.session import AppRef, client_options, get_app, run_with_client
from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.gitops.application import API_VERSION, KIND, AppSpec
from reconciler.gitops.follow import FollowTimeout, follow_health, follow_sync, request_sync
from reconciler.gitops.rollback import RollbackError, choose_entry, pause_automation_patch
from reconciler.gitops.sync import SyncEngine, SyncOptions
from reconciler.source.git import GitCache

__all__ = [
    "diff_application",
    "history_command",
    "rollback_command",
    "status_command",
    "sync_command",
]

JSONDict = dict[str, Any]

_STYLES = {"created": "green", "configured": "yellow", "pruned": "red", "failed": "bold red"}


def _say(line: str) -> None:
    """One progress line, its verb colored as `git push` output is not."""
    style = next((s for verb, s in _STYLES.items() if f" {verb}" in line), "")
    if line.startswith(("error:", "sync Failed", "sync Error", "health Degraded")):
        style = "bold red"
    elif line.startswith(("sync Succeeded", "health Healthy")):
        style = "bold green"
    console().print(line, style=style, markup=False, highlight=False)


async def _follow(
    client: Client,
    ref: AppRef,
    requested: str,
    timeout: float,
    *,
    dry_run: bool,
    require_synced: bool,
) -> int:
    """Follow a requested sync to its result, then (unless a dry run) the rollout to
    health; the exit code: 0 synced and healthy, 1 otherwise."""
    try:
        state = await follow_sync(client, ref.namespace, ref.name, requested, _say, timeout)
        if state.get("phase") != "Succeeded":
            return 1
        if dry_run:
            return 0
        health = await follow_health(
            client,
            ref.namespace,
            ref.name,
            _say,
            timeout,
            after_request=requested,
            require_synced=require_synced,
        )
    except FollowTimeout as e:
        _say(f"error: {e} (it goes on in the controller: `recon status {ref}`)")
        return 1
    return 0 if health == "Healthy" else 1


@click.command("sync")
@click.argument("app")
@click.option("--revision", default=None, help="Sync this branch, tag or commit, not the target.")
@click.option("--prune", is_flag=True, help="Delete objects that left git.")
@click.option("--dry-run", is_flag=True, help="Validate and dry-run every object; change nothing.")
@click.option(
    "--force", is_flag=True, help="Prune even when that deletes more than half of the objects."
)
@click.option("--async", "no_wait", is_flag=True, help="Ask for the sync and return.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to follow it.")
@client_options
def sync_command(
    app: str,
    revision: str | None,
    prune: bool,
    dry_run: bool,
    force: bool,
    no_wait: bool,
    timeout: float,
    kubeconfig: str | None,
    data_dir: Path,
    namespace: str,
) -> None:
    """Sync APP now and follow it: each object's result, the rollout, the final health.
    Exit 0 when synced and healthy, 1 otherwise."""
    ref = AppRef(app, namespace)

    async def work(client: Client) -> int:
        await get_app(client, ref)
        requested = await request_sync(
            client,
            ref.namespace,
            ref.name,
            revision=revision,
            prune=prune,
            dry_run=dry_run,
            force=force,
            initiated_by="recon sync",
        )
        if no_wait:
            click.echo(f"sync of {ref} requested")
            return 0
        return await _follow(
            client, ref, requested, timeout, dry_run=dry_run, require_synced=revision is None
        )

    sys.exit(run_with_client(kubeconfig, data_dir, work))


def diff_application(
    app: str, namespace: str, kubeconfig: str | None, data_dir: Path, output: str
) -> int:
    """`recon diff APP`: what a sync of APP would change now (objects that left git are
    shown as to prune). Exit 0 no differences, 1 differences, 2 errors."""
    ref = AppRef(app, namespace)
    # Its own clones: the server may fetch into its cache at the same time.
    cache = GitCache(data_dir.expanduser() / "cache" / "cli-git")

    async def work(client: Client) -> int:
        spec = AppSpec.from_object(await get_app(client, ref))
        engine = SyncEngine(client, cache)
        outcome = await engine.sync(spec, SyncOptions(prune=True, dry_run=True, force=True))
        if (
            outcome.errors
            or outcome.phase == "Error"
            or (outcome.phase == "Failed" and not outcome.results)
        ):
            for error in outcome.errors:
                click.echo(error, err=True)
            click.echo(f"recon diff: {outcome.message}", err=True)
            return 2
        return show_diffs(outcome.results, output, show_prune=True)

    try:
        return run_with_client(kubeconfig, data_dir, work)
    except click.ClickException as e:
        click.echo(f"recon diff: {e.message}", err=True)
        return 2


async def _children(client: Client, app: JSONDict) -> dict[str, list[ObjectNode]]:
    """For each workload the Application manages, what it owns, found by ownerReference
    among the namespace's ReplicaSets, Jobs and Pods."""
    out: dict[str, list[ObjectNode]] = {}
    owned: dict[str, list[JSONDict]] = {}
    for entry in (app.get("status") or {}).get("resources") or []:
        if entry.get("kind") not in WORKLOAD_KINDS or not entry.get("namespace"):
            continue
        namespace = str(entry["namespace"])
        version = str(entry.get("version") or "v1")
        api_version = f"{entry['group']}/{version}" if entry.get("group") else version
        try:
            live = await client.get(api_version, str(entry["kind"]), str(entry["name"]), namespace)
        except (NotFoundError, ClientError):
            continue
        if namespace not in owned:
            owned[namespace] = []
            for av, kind in (("apps/v1", "ReplicaSet"), ("batch/v1", "Job"), ("v1", "Pod")):
                owned[namespace] += [
                    {**o, "kind": kind} for o in (await client.list(av, kind, namespace)).items
                ]
        out[resource_key(entry)] = descendants(str(live["metadata"]["uid"]), owned[namespace])
    return out


@click.command("status")
@click.argument("app")
@client_options
def status_command(app: str, kubeconfig: str | None, data_dir: Path, namespace: str) -> None:
    """APP as a tree: the Application, its objects with sync status and health, and what
    they run (ReplicaSets, Jobs, Pods with their status and restarts)."""
    ref = AppRef(app, namespace)

    async def work(client: Client) -> tuple[JSONDict, dict[str, list[ObjectNode]]]:
        obj = await get_app(client, ref)
        return obj, await _children(client, obj)

    obj, children = run_with_client(kubeconfig, data_dir, work)
    out = console()
    out.print(status_tree(obj, children))
    state = (obj.get("status") or {}).get("operationState") or {}
    if state:
        out.print(
            f"last sync: {state.get('phase')} at {state.get('finishedAt')}: {state.get('message')}",
            markup=False,
            highlight=False,
        )
    for error in state.get("errors") or []:
        out.print(f"error: {error}", style="red", markup=False, highlight=False)


@click.command("history")
@click.argument("app")
@client_options
def history_command(app: str, kubeconfig: str | None, data_dir: Path, namespace: str) -> None:
    """The last syncs of APP (newest last; * marks what is deployed): the ids
    `recon rollback` takes."""
    ref = AppRef(app, namespace)
    obj = run_with_client(kubeconfig, data_dir, lambda client: get_app(client, ref))
    status = obj.get("status") or {}
    history = status.get("history") or []
    if not history:
        click.echo(f"{ref} has not been synced yet", err=True)
        return
    console().print(history_table(history, status.get("lastAppliedRevision")))


@click.command("rollback")
@click.argument("app")
@click.argument("history_id", required=False, type=int)
@click.option("--prune", is_flag=True, help="Also delete objects the old revision lacks.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to follow it.")
@client_options
def rollback_command(
    app: str,
    history_id: int | None,
    prune: bool,
    timeout: float,
    kubeconfig: str | None,
    data_dir: Path,
    namespace: str,
) -> None:
    """Re-apply the revision of history entry HISTORY_ID of APP (default: the previous
    deployment) and turn automated sync off until `recon app set APP --sync-policy
    automated` turns it back on, as Argo CD does."""
    ref = AppRef(app, namespace)

    async def work(client: Client) -> int:
        obj = await get_app(client, ref)
        status = obj.get("status") or {}
        try:
            entry = choose_entry(
                status.get("history") or [], status.get("lastAppliedRevision"), history_id
            )
        except RollbackError as e:
            raise click.ClickException(str(e)) from None
        pause = pause_automation_patch(obj)
        if pause is not None:
            await client.patch(API_VERSION, KIND, ref.name, pause, namespace=ref.namespace)
            _say(
                f"automated sync of {ref} is off until `recon app set {ref} "
                "--sync-policy automated`"
            )
        revision = str(entry["revision"])
        _say(f"rolling {ref} back to {revision[:12]} (history {entry.get('id')})")
        requested = await request_sync(
            client,
            ref.namespace,
            ref.name,
            revision=revision,
            prune=prune,
            initiated_by=f"rollback to {entry.get('id')}",
        )
        return await _follow(client, ref, requested, timeout, dry_run=False, require_synced=False)

    sys.exit(run_with_client(kubeconfig, data_dir, work))
