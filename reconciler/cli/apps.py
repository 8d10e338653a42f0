"""`recon app create|list|get|set|delete`: Applications from the command line, as
`argocd app ...` users know them. Each is one API call or two; the server's CRD validation
is what rejects a bad spec (its message is shown as is).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import click
import yaml

from reconciler.cli.app_view import app_details, app_table, console, resources_table
from reconciler.cli.session import AppRef, client_options, get_app, run_with_client
from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, NotFoundError
from reconciler.gitops.application import API_VERSION, KIND, parse_duration
from reconciler.gitops.manager import ORPHAN_ANNOTATION
from reconciler.gitops.rollback import automation_patch

__all__ = ["app_group", "application_object"]

JSONDict = dict[str, Any]


def application_object(
    name: str,
    namespace: str,
    repo: str,
    path: str,
    revision: str,
    dest_namespace: str | None,
    automated: bool,
    prune: bool,
    self_heal: bool,
    interval: str,
    recurse: bool,
    credentials_secret: str | None,
) -> JSONDict:
    """The Application `recon app create` writes."""
    source: JSONDict = {
        "repoURL": repo,
        "targetRevision": revision,
        "path": path,
        "directory": {"recurse": recurse},
    }
    if credentials_secret:
        source["credentialsSecret"] = credentials_secret
    policy: JSONDict = {"interval": interval}
    if automated:
        policy["automated"] = {"prune": prune, "selfHeal": self_heal}
    spec: JSONDict = {"source": source, "syncPolicy": policy}
    if dest_namespace:
        spec["destination"] = {"namespace": dest_namespace}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@click.group("app")
def app_group() -> None:
    """Applications: a git source deployed to the cluster and kept in sync."""


def _check_interval(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if parse_duration(value, -1.0) <= 0:
        raise click.BadParameter(f"{value!r} is not a duration such as 30s, 5m or 1h30m")
    return value


@app_group.command("create")
@click.argument("name")
@click.option("--repo", required=True, help="Git URL of the manifests (https://, ssh, file://).")
@click.option("--path", default=".", show_default=True, help="Folder inside the repo.")
@click.option(
    "--revision", default="HEAD", show_default=True, help="Branch, tag or commit to deploy."
)
@click.option("--dest-namespace", default=None, help="Namespace for objects that do not name one.")
@click.option(
    "--sync-policy",
    type=click.Choice(["none", "automated"]),
    default="none",
    show_default=True,
    help="automated: sync every change of the revision by itself (none: `recon sync`).",
)
@click.option("--auto-prune", is_flag=True, help="Automated syncs delete what left git.")
@click.option("--self-heal", is_flag=True, help="Automated syncs revert changes made by hand.")
@click.option(
    "--interval",
    default="60s",
    show_default=True,
    callback=_check_interval,
    help="How often git and the live objects are compared.",
)
@click.option(
    "--directory-recurse/--no-directory-recurse",
    default=True,
    show_default=True,
    help="Read manifests in sub-folders of --path too.",
)
@click.option("--credentials-secret", default=None, help="Secret with username/password for HTTPS.")
@client_options
def create_command(
    name: str,
    repo: str,
    path: str,
    revision: str,
    dest_namespace: str | None,
    sync_policy: str,
    auto_prune: bool,
    self_heal: bool,
    interval: str,
    directory_recurse: bool,
    credentials_secret: str | None,
    kubeconfig: str | None,
    data_dir: Path,
    namespace: str,
) -> None:
    """Create Application NAME deploying --repo."""
    if (auto_prune or self_heal) and sync_policy != "automated":
        raise click.UsageError("--auto-prune and --self-heal need --sync-policy automated")
    ref = AppRef(name, namespace)
    app = application_object(
        ref.name,
        ref.namespace,
        repo,
        path,
        revision,
        dest_namespace,
        sync_policy == "automated",
        auto_prune,
        self_heal,
        interval,
        directory_recurse,
        credentials_secret,
    )

    async def work(client: Client) -> None:
        try:
            await client.create(app)
        except AlreadyExistsError:
            raise click.ClickException(f"an Application {ref} already exists") from None

    run_with_client(kubeconfig, data_dir, work)
    click.echo(f"application {ref} created")
    if sync_policy != "automated":
        click.echo(f"sync it with: recon sync {ref}")


@app_group.command("list")
@click.option("-A", "--all-namespaces", is_flag=True, help="Applications of every namespace.")
@click.option("-o", "--output", type=click.Choice(["table", "name", "json"]), default="table")
@client_options
def list_command(
    all_namespaces: bool, output: str, kubeconfig: str | None, data_dir: Path, namespace: str
) -> None:
    """The Applications with their sync status and health."""

    async def work(client: Client) -> list[JSONDict]:
        listed = await client.list(API_VERSION, KIND, None if all_namespaces else namespace)
        return sorted(
            listed.items,
            key=lambda a: (str(a["metadata"].get("namespace")), str(a["metadata"].get("name"))),
        )

    apps = run_with_client(kubeconfig, data_dir, work)
    if output == "json":
        click.echo(json.dumps(apps, indent=2))
    elif output == "name":
        for app in apps:
            click.echo(f"{app['metadata']['namespace']}/{app['metadata']['name']}")
    elif not apps:
        where = "any namespace" if all_namespaces else f"namespace {namespace}"
        click.echo(f"no Applications in {where}", err=True)
    else:
        console().print(app_table(apps, all_namespaces))


@app_group.command("get")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml"]), default="wide")
@client_options
def get_command(
    name: str, output: str, kubeconfig: str | None, data_dir: Path, namespace: str
) -> None:
    """Application NAME: its source, policy, sync status, health and objects."""
    ref = AppRef(name, namespace)
    app = run_with_client(kubeconfig, data_dir, lambda client: get_app(client, ref))
    if output == "json":
        click.echo(json.dumps(app, indent=2))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(app, sort_keys=False), nl=False)
        return
    out = console()
    out.print(app_details(app))
    resources = (app.get("status") or {}).get("resources") or []
    if resources:
        out.print()
        out.print(resources_table(resources))
    errors = ((app.get("status") or {}).get("operationState") or {}).get("errors") or []
    for error in errors:
        out.print(f"[red]error:[/red] {error}", markup=True, highlight=False)


@app_group.command("set")
@click.argument("name")
@click.option(
    "--sync-policy",
    type=click.Choice(["none", "automated"]),
    default=None,
    help="automated re-enables automatic sync (after a rollback: as it was before).",
)
@click.option("--auto-prune/--no-auto-prune", default=None, help="Automated syncs prune.")
@click.option("--self-heal/--no-self-heal", default=None, help="Automated syncs self-heal.")
@click.option("--revision", default=None, help="New target revision (branch, tag, commit).")
@click.option("--path", default=None, help="New folder inside the repo.")
@click.option("--interval", default=None, help="New comparison interval (30s, 5m, ...).")
@client_options
def set_command(
    name: str,
    sync_policy: str | None,
    auto_prune: bool | None,
    self_heal: bool | None,
    revision: str | None,
    path: str | None,
    interval: str | None,
    kubeconfig: str | None,
    data_dir: Path,
    namespace: str,
) -> None:
    """Change Application NAME: its sync policy, target revision, path or interval."""
    if interval is not None:
        _check_interval(click.get_current_context(), click.Option(["--interval"]), interval)
    ref = AppRef(name, namespace)

    async def work(client: Client) -> None:
        app = await get_app(client, ref)
        patch: JSONDict = {}
        automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
        if sync_policy is not None or auto_prune is not None or self_heal is not None:
            enabled = (
                sync_policy == "automated"
                if sync_policy is not None
                else isinstance(automated, dict)
            )
            if not enabled and (auto_prune or self_heal):
                raise click.UsageError("--auto-prune and --self-heal need automated sync")
            patch = automation_patch(app, enabled, auto_prune, self_heal)
        source: JSONDict = {}
        if revision is not None:
            source["targetRevision"] = revision
        if path is not None:
            source["path"] = path
        if source:
            patch.setdefault("spec", {})["source"] = source
        if interval is not None:
            patch.setdefault("spec", {}).setdefault("syncPolicy", {})["interval"] = interval
        if not patch:
            raise click.UsageError("nothing to change: give an option")
        await client.patch(API_VERSION, KIND, ref.name, patch, namespace=ref.namespace)

    run_with_client(kubeconfig, data_dir, work)
    click.echo(f"application {ref} updated")


@app_group.command("delete")
@click.argument("name")
@click.option(
    "--orphan",
    is_flag=True,
    help="Keep what the Application deployed (default: it is deleted with it).",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until the Application and (unless --orphan) its objects are gone.",
)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait.")
@client_options
def delete_command(
    name: str,
    orphan: bool,
    wait: bool,
    timeout: float,
    kubeconfig: str | None,
    data_dir: Path,
    namespace: str,
) -> None:
    """Delete Application NAME and everything it deployed (unless --orphan)."""
    ref = AppRef(name, namespace)

    async def work(client: Client) -> bool:
        await get_app(client, ref)
        annotations = {ORPHAN_ANNOTATION: "orphan" if orphan else None}
        await client.patch(
            API_VERSION,
            KIND,
            ref.name,
            {"metadata": {"annotations": annotations}},
            namespace=ref.namespace,
        )
        await client.delete(API_VERSION, KIND, ref.name, ref.namespace)
        if not wait:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await client.get(API_VERSION, KIND, ref.name, ref.namespace)
            except NotFoundError:
                return True
            await asyncio.sleep(0.25)
        raise click.ClickException(
            f"application {ref} is still being deleted after {timeout:.0f} s "
            "(is the Application controller running? `kubectl describe` it)"
        )

    gone = run_with_client(kubeconfig, data_dir, work)
    what = "its objects kept" if orphan else "its objects deleted"
    click.echo(f"application {ref} deleted ({what})" if gone else f"application {ref} deleting")
