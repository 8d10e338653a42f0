"""How the client commands show Applications: rich tables and trees built from API objects.

Pure: every function takes the objects as read from the server and returns something rich
can print, so the commands stay thin and the layout is tested without a server.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from reconciler.apiserver.tables import pod_summary

__all__ = [
    "ObjectNode",
    "app_details",
    "app_table",
    "console",
    "descendants",
    "health_style",
    "history_table",
    "resources_table",
    "status_tree",
]

JSONDict = dict[str, Any]

_HEALTH = {
    "Healthy": "green",
    "Progressing": "cyan",
    "Degraded": "red",
    "Suspended": "magenta",
    "Missing": "yellow",
    "Unknown": "dim",
}
_SYNC = {"Synced": "green", "OutOfSync": "yellow", "Unknown": "dim"}
_UNBOUNDED = 100_000
_PHASE = {"Succeeded": "green", "Failed": "red", "Error": "red", "Running": "cyan"}
# Kinds whose children (ReplicaSets, Jobs, Pods) `recon status` shows under them.
WORKLOAD_KINDS = frozenset(
    {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"}
)


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr). Not on a terminal, lines are never wrapped or cut
    (as kubectl's piped output), so scripts and greps see whole values."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, width=_UNBOUNDED, highlight=False, soft_wrap=True)


def health_style(status: str) -> str:
    return _HEALTH.get(status, "")


def _styled(value: str, styles: Mapping[str, str]) -> Text:
    return Text(value, style=styles.get(value, ""))


def _status(app: JSONDict) -> JSONDict:
    return app.get("status") or {}


def _sync_of(app: JSONDict) -> str:
    return str((_status(app).get("sync") or {}).get("status") or "Unknown")


def _health_of(app: JSONDict) -> str:
    return str((_status(app).get("health") or {}).get("status") or "Unknown")


def _revision_of(app: JSONDict) -> str:
    return str((_status(app).get("sync") or {}).get("revision") or "")[:12]


def _policy(app: JSONDict) -> str:
    automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    if not isinstance(automated, dict):
        return "manual"
    flags = [
        k
        for k, v in (("prune", automated.get("prune")), ("self-heal", automated.get("selfHeal")))
        if v
    ]
    return "auto" + (f" ({', '.join(flags)})" if flags else "")


def app_table(apps: Iterable[JSONDict], all_namespaces: bool = False) -> Table:
    """`recon app list`: one row per Application, the columns Argo CD users scan."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    if all_namespaces:
        table.add_column("NAMESPACE")
    for column in ("NAME", "SYNC", "HEALTH", "REVISION", "POLICY", "REPO", "PATH", "TARGET"):
        table.add_column(column)
    for app in apps:
        meta, source = app.get("metadata") or {}, (app.get("spec") or {}).get("source") or {}
        row: list[str | Text] = [str(meta.get("namespace", ""))] if all_namespaces else []
        row += [
            str(meta.get("name", "")),
            _styled(_sync_of(app), _SYNC),
            _styled(_health_of(app), _HEALTH),
            _revision_of(app),
            _policy(app),
            str(source.get("repoURL", "")),
            str(source.get("path", ".")),
            str(source.get("targetRevision", "HEAD")),
        ]
        table.add_row(*row)
    return table


def _resource_label(entry: Mapping[str, Any]) -> str:
    kind = str(entry.get("kind", "")).lower()
    group = entry.get("group") or ""
    return f"{kind}{'.' + group if group else ''}/{entry.get('name')}"


def resources_table(resources: Sequence[JSONDict]) -> Table:
    """The managed objects with their own sync status and health."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("OBJECT", "NAMESPACE", "SYNC", "HEALTH", "MESSAGE"):
        table.add_column(column)
    for entry in resources:
        health = entry.get("health") or {}
        message = str(health.get("message") or entry.get("message") or "")
        table.add_row(
            _resource_label(entry),
            str(entry.get("namespace") or ""),
            _styled(str(entry.get("status", "Unknown")), _SYNC),
            _styled(str(health.get("status", "Unknown")), _HEALTH),
            message,
        )
    return table


def app_details(app: JSONDict) -> Table:
    """`recon app get`: the Application's spec and status as name/value lines."""
    meta, spec, status = app.get("metadata") or {}, app.get("spec") or {}, _status(app)
    source = spec.get("source") or {}
    operation = status.get("operationState") or {}
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("Name", f"{meta.get('namespace')}/{meta.get('name')}"),
        ("Repo", str(source.get("repoURL", ""))),
        ("Target", str(source.get("targetRevision", "HEAD"))),
        ("Path", str(source.get("path", "."))),
        ("Destination", str((spec.get("destination") or {}).get("namespace") or "(as in git)")),
        ("Sync policy", _policy(app)),
        ("Interval", str((spec.get("syncPolicy") or {}).get("interval") or "60s")),
        ("Sync status", Text.assemble(_styled(_sync_of(app), _SYNC), f" {_revision_of(app)}")),
        ("Health", _health_line(status)),
    ]
    if operation:
        rows.append(("Last sync", _operation_line(operation)))
    for condition in status.get("conditions") or []:
        rows.append((str(condition.get("type")), Text(str(condition.get("message")), "red")))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _health_line(status: JSONDict) -> Text:
    health = status.get("health") or {}
    text = _styled(str(health.get("status") or "Unknown"), _HEALTH)
    if health.get("message"):
        text.append(f" ({health['message']})")
    return text


def _operation_line(operation: JSONDict) -> Text:
    phase = str(operation.get("phase", ""))
    revision = str((operation.get("syncResult") or {}).get("revision") or "")[:12]
    text = _styled(phase, _PHASE)
    text.append(f" {revision} at {operation.get('finishedAt', '')}: {operation.get('message')}")
    return text


def history_table(history: Sequence[JSONDict], current_revision: str | None) -> Table:
    """`recon history`: newest last, as `argocd app history`; the deployed revision marked."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "DEPLOYED AT", "REVISION", "PHASE", "BY", "MESSAGE"):
        table.add_column(column)
    newest_deployed = next(
        (
            h.get("id")
            for h in reversed(history)
            if h.get("phase") == "Succeeded" and h.get("revision") == current_revision
        ),
        None,
    )
    for entry in history:
        revision = str(entry.get("revision") or "")[:12]
        if entry.get("id") == newest_deployed:
            revision += " *"
        table.add_row(
            str(entry.get("id", "")),
            str(entry.get("deployedAt", "")),
            revision,
            _styled(str(entry.get("phase", "")), _PHASE),
            str(entry.get("initiatedBy", "")),
            str(entry.get("message", "")),
        )
    return table


@dataclass
class ObjectNode:
    """A live object and what it owns (a Deployment → its ReplicaSets → their Pods)."""

    obj: JSONDict
    children: list[ObjectNode] = field(default_factory=list)


def descendants(root_uid: str, objects: Iterable[JSONDict]) -> list[ObjectNode]:
    """The objects owned, directly or not, by `root_uid`, nested by ownerReference."""
    by_owner: dict[str, list[JSONDict]] = {}
    for obj in objects:
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
            by_owner.setdefault(str(ref.get("uid")), []).append(obj)
    seen: set[str] = {root_uid}

    def build(uid: str) -> list[ObjectNode]:
        nodes = []
        children = sorted(by_owner.get(uid, []), key=lambda o: str(o["metadata"].get("name")))
        for child in children:
            child_uid = str(child["metadata"].get("uid"))
            if child_uid in seen:
                continue
            seen.add(child_uid)
            nodes.append(ObjectNode(child, build(child_uid)))
        return nodes

    return build(root_uid)


def _child_line(obj: JSONDict) -> Text:
    meta, kind = obj.get("metadata") or {}, str(obj.get("kind", ""))
    text = Text(f"{kind.lower()}/{meta.get('name')} ")
    if kind == "Pod":
        shown, ready, restarts = pod_summary(obj)
        style = "green" if shown in ("Running", "Completed") and _all_ready(ready) else "yellow"
        if shown in ("Error", "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"):
            style = "red"
        text.append(shown, style=style)
        text.append(f"  ready {ready}  restarts {restarts}")
    elif kind == "ReplicaSet":
        status = obj.get("status") or {}
        text.append(
            f"ready {status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 0)}"
        )
    elif kind == "Job":
        status = obj.get("status") or {}
        done = [c["type"] for c in status.get("conditions") or [] if c.get("status") == "True"]
        text.append(", ".join(done) or f"active {status.get('active', 0)}")
    return text


def _all_ready(ready: str) -> bool:
    have, _, want = ready.partition("/")
    return have == want


def _top_line(entry: JSONDict) -> Text:
    health = entry.get("health") or {}
    text = Text(f"{_resource_label(entry)} ")
    text.append(str(health.get("status", "Unknown")), style=health_style(str(health.get("status"))))
    sync = str(entry.get("status", "Unknown"))
    text.append(" ")
    text.append(sync, style=_SYNC.get(sync, ""))
    message = health.get("message") or entry.get("message")
    if message:
        text.append(f"  {message}", style="dim")
    return text


def status_tree(app: JSONDict, children: Mapping[str, list[ObjectNode]]) -> Tree:
    """`recon status`: Application → its objects (sync, health) → what they own (pods).
    `children` maps a resource's label (`deployment.apps/web`, with its namespace as
    `ns/label`) to the nodes it owns."""
    meta = app.get("metadata") or {}
    root = Text(f"application/{meta.get('name')} ", style="bold")
    root.append(_health_of(app), style=health_style(_health_of(app)))
    root.append(" ")
    root.append(_sync_of(app), style=_SYNC.get(_sync_of(app), ""))
    if _revision_of(app):
        root.append(f" {_revision_of(app)}", style="dim")
    tree = Tree(root)
    for entry in _status(app).get("resources") or []:
        branch = tree.add(_top_line(entry))
        _add(branch, children.get(resource_key(entry), []))
    return tree


def resource_key(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('namespace') or ''}/{_resource_label(entry)}"


def _add(branch: Tree, nodes: Sequence[ObjectNode]) -> None:
    for node in nodes:
        _add(branch.add(_child_line(node.obj)), node.children)
