"""The tables and the tree the client commands print, rendered without a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console, RenderableType

from reconciler.cli.app_view import (
    app_details,
    app_table,
    descendants,
    history_table,
    resource_key,
    status_tree,
)

JSONDict = dict[str, Any]


def render(renderable: RenderableType) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


APP: JSONDict = {
    "metadata": {"name": "shop", "namespace": "default"},
    "spec": {
        "source": {"repoURL": "file:///repos/shop.git", "path": ".", "targetRevision": "main"},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "interval": "30s"},
    },
    "status": {
        "sync": {"status": "Synced", "revision": "0123456789abcdef0123"},
        "health": {"status": "Progressing", "message": "1 of 2 updated replicas are available"},
        "lastAppliedRevision": "0123456789abcdef0123",
        "resources": [
            {
                "group": "apps",
                "version": "v1",
                "kind": "Deployment",
                "namespace": "demo",
                "name": "web",
                "status": "Synced",
                "health": {"status": "Progressing", "message": "rolling out"},
            },
            {
                "group": "",
                "version": "v1",
                "kind": "Service",
                "namespace": "demo",
                "name": "web",
                "status": "OutOfSync",
                "health": {"status": "Healthy"},
            },
        ],
        "operationState": {
            "phase": "Succeeded",
            "message": "successfully synced (2 created)",
            "finishedAt": "2026-12-03T10:00:00Z",
            "syncResult": {"revision": "0123456789abcdef0123"},
        },
    },
}


def test_list_shows_sync_health_short_revision_and_policy() -> None:
    text = render(app_table([APP]))
    header, row = text.splitlines()[:2]
    assert header.split() == [
        "NAME",
        "SYNC",
        "HEALTH",
        "REVISION",
        "POLICY",
        "REPO",
        "PATH",
        "TARGET",
    ]
    assert row.split()[:4] == ["shop", "Synced", "Progressing", "0123456789ab"]
    assert "auto (prune, self-heal)" in row
    assert "file:///repos/shop.git" in row


def test_manual_policy_and_namespace_column() -> None:
    manual = {**APP, "spec": {**APP["spec"], "syncPolicy": {}}}
    text = render(app_table([manual], all_namespaces=True))
    assert text.splitlines()[0].split()[0] == "NAMESPACE"
    assert "manual" in text.splitlines()[1]


def test_details_show_health_message_and_last_sync() -> None:
    text = render(app_details(APP))
    assert "Progressing (1 of 2 updated replicas are available)" in text
    assert "Succeeded 0123456789ab at 2026-12-03T10:00:00Z: successfully synced" in text
    assert "Interval" in text and "30s" in text


def test_history_marks_the_deployed_entry() -> None:
    history = [
        {"id": 1, "revision": "aaaaaaaaaaaaaaaa", "phase": "Succeeded", "deployedAt": "t1"},
        {"id": 2, "revision": "bbbbbbbbbbbbbbbb", "phase": "Succeeded", "deployedAt": "t2"},
    ]
    lines = render(history_table(history, "aaaaaaaaaaaaaaaa")).splitlines()
    assert "aaaaaaaaaaaa *" in lines[1]
    assert "*" not in lines[2]


def pod(name: str, owner_uid: str, phase: str = "Running", ready: bool = True) -> JSONDict:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "uid": f"uid-{name}", "ownerReferences": [{"uid": owner_uid}]},
        "spec": {"containers": [{"name": "web"}]},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "web", "ready": ready, "restartCount": 2, "state": {"running": {}}}
            ],
        },
    }


def test_descendants_nest_by_owner_and_ignore_others() -> None:
    rs = {
        "kind": "ReplicaSet",
        "metadata": {"name": "web-1", "uid": "rs1", "ownerReferences": [{"uid": "dep"}]},
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 1},
    }
    objects = [rs, pod("web-1-b", "rs1"), pod("web-1-a", "rs1"), pod("other", "elsewhere")]
    nodes = descendants("dep", objects)
    assert [n.obj["metadata"]["name"] for n in nodes] == ["web-1"]
    assert [n.obj["metadata"]["name"] for n in nodes[0].children] == ["web-1-a", "web-1-b"]


def test_descendants_survive_an_ownership_cycle() -> None:
    a = {"kind": "Pod", "metadata": {"name": "a", "uid": "a", "ownerReferences": [{"uid": "b"}]}}
    b = {"kind": "Pod", "metadata": {"name": "b", "uid": "b", "ownerReferences": [{"uid": "a"}]}}
    nodes = descendants("a", [a, b])
    assert [n.obj["metadata"]["name"] for n in nodes] == ["b"]
    assert nodes[0].children == []


def test_status_tree_shows_objects_and_their_pods() -> None:
    rs = {
        "kind": "ReplicaSet",
        "metadata": {"name": "web-1", "uid": "rs1", "ownerReferences": [{"uid": "dep"}]},
        "spec": {"replicas": 1},
        "status": {"readyReplicas": 1},
    }
    deployment = APP["status"]["resources"][0]
    children = {resource_key(deployment): descendants("dep", [rs, pod("web-1-a", "rs1")])}
    text = render(status_tree(APP, children))
    lines = text.splitlines()
    assert lines[0].startswith("application/shop Progressing Synced 0123456789ab")
    assert "deployment.apps/web Progressing Synced  rolling out" in text
    assert "service/web Healthy OutOfSync" in text
    assert "replicaset/web-1 ready 1/1" in text
    assert "pod/web-1-a Running  ready 1/1  restarts 2" in text
