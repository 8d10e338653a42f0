"""Drift as self-heal sees it: what a `kubectl scale` or `edit` changed, not what the server did.

Each case starts from a Deployment as the API server holds it after Recon created it (the
last-applied annotation, server bookkeeping, defaults, status), then changes it the way a
person or a controller would.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.gitops.apply import PatchMetas
from reconciler.gitops.drift import drifted_paths, is_out_of_sync
from reconciler.gitops.ignore import parse_pointer
from reconciler.merge.three_way import (
    LAST_APPLIED,
    apply_three_way,
    desired_with_annotation,
    last_applied_of,
)

JSON = dict[str, Any]
METAS = PatchMetas()
DEPLOYMENT = METAS.for_kind("apps/v1", "Deployment")

WEB: JSON = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "prod",
        "labels": {"app": "web"},
        "annotations": {"recon.dev/application": "default/demo"},
    },
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}


def served(desired: JSON) -> JSON:
    """`desired` created through the API: annotation, bookkeeping, defaults and status."""
    live = desired_with_annotation(desired)
    live["metadata"].update(
        uid="6f1c", resourceVersion="42", generation=1, creationTimestamp="2025-01-01T00:00:00Z"
    )
    spec = live["spec"]
    spec.update(progressDeadlineSeconds=600, revisionHistoryLimit=10)
    spec["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    pod = spec["template"]["spec"]
    pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst", terminationGracePeriodSeconds=30)
    for container in pod["containers"]:
        container.update(
            imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log"
        )
    live["status"] = {"replicas": 3, "readyReplicas": 3, "observedGeneration": 1}
    return live


def put(doc: JSON, pointer: str, value: Any) -> JSON:
    """A copy of `doc` with `value` at `pointer` (None: removed)."""
    doc = copy.deepcopy(doc)
    *parents, last = parse_pointer(pointer)
    at: Any = doc
    for token in parents:
        at = at[int(token)] if isinstance(at, list) else at.setdefault(token, {})
    if value is None:
        at.pop(last, None)
    elif isinstance(at, list):
        at[int(last)] = value
    else:
        at[last] = value
    return doc


def check(
    desired: JSON, live: JSON | None, pointers: tuple[str, ...] = ()
) -> tuple[bool, list[str]]:
    applied = last_applied_of(live) if live is not None else None
    return (
        is_out_of_sync(applied, desired, live, DEPLOYMENT, pointers),
        drifted_paths(applied, desired, live, DEPLOYMENT, pointers),
    )


Edit = Callable[[JSON], JSON]

IN_SYNC: list[tuple[str, Edit, Edit]] = [
    ("just created", lambda live: live, lambda git: git),
    (
        "status and bookkeeping moved",
        lambda live: put(
            put(put(live, "/status/readyReplicas", 1), "/metadata/resourceVersion", "99"),
            "/metadata/generation",
            2,
        ),
        lambda git: git,
    ),
    (
        "managedFields written",
        lambda live: put(live, "/metadata/managedFields", [{"manager": "kubectl"}]),
        lambda git: git,
    ),
    (
        "a label someone else added",
        lambda live: put(live, "/metadata/labels/team", "ops"),
        lambda git: git,
    ),
    (
        "git now declares a value the server defaulted",
        lambda live: live,
        lambda git: put(git, "/spec/revisionHistoryLimit", 10),
    ),
]


@pytest.mark.parametrize(("why", "edit_live", "edit_git"), IN_SYNC, ids=[c[0] for c in IN_SYNC])
def test_not_drift(why: str, edit_live: Edit, edit_git: Edit) -> None:
    assert check(edit_git(WEB), edit_live(served(WEB))) == (False, [])


OUT_OF_SYNC: list[tuple[str, Edit, Edit, list[str]]] = [
    (
        "kubectl scale",
        lambda live: put(live, "/spec/replicas", 5),
        lambda git: git,
        ["/spec/replicas"],
    ),
    (
        "kubectl edit of the image",
        lambda live: put(live, "/spec/template/spec/containers/0/image", "nginx:hot"),
        lambda git: git,
        ["/spec/template/spec/containers/0/image"],
    ),
    (
        "a label git sets, edited",
        lambda live: put(live, "/metadata/labels/app", "other"),
        lambda git: git,
        ["/metadata/labels/app"],
    ),
    (
        "a field git dropped",
        lambda live: live,
        lambda git: put(git, "/spec/replicas", None),
        ["/spec/replicas"],
    ),
    (
        "a new commit",
        lambda live: live,
        lambda git: put(git, "/spec/template/spec/containers/0/image", "nginx:1.28"),
        ["/spec/template/spec/containers/0/image"],
    ),
    (
        "a container added",
        lambda live: live,
        lambda git: put(
            git,
            "/spec/template/spec/containers",
            [*git["spec"]["template"]["spec"]["containers"], {"name": "log", "image": "busybox"}],
        ),
        ["/spec/template/spec/containers"],
    ),
]


@pytest.mark.parametrize(
    ("why", "edit_live", "edit_git", "paths"), OUT_OF_SYNC, ids=[c[0] for c in OUT_OF_SYNC]
)
def test_drift(why: str, edit_live: Edit, edit_git: Edit, paths: list[str]) -> None:
    assert check(edit_git(WEB), edit_live(served(WEB))) == (True, paths)


def test_deleted_by_hand() -> None:
    assert check(WEB, None) == (True, [""])
    assert check(WEB, None, ("/spec/replicas",)) == (True, [""])


def test_scale_is_not_drift_when_replicas_are_ignored() -> None:
    scaled = put(served(WEB), "/spec/replicas", 5)
    assert check(WEB, scaled, ("/spec/replicas",)) == (False, [])
    # other drift is still seen
    edited = put(scaled, "/spec/template/spec/containers/0/image", "nginx:hot")
    assert check(WEB, edited, ("/spec/replicas",)) == (
        True,
        ["/spec/template/spec/containers/0/image"],
    )
    # and a git change of the ignored field is not applied either
    assert check(put(WEB, "/spec/replicas", 4), scaled, ("/spec/replicas",)) == (False, [])


def test_hpa_managed_replicas_that_git_never_declared() -> None:
    git = put(WEB, "/spec/replicas", None)
    live = put(served(git), "/spec/replicas", 7)
    assert check(git, live, ("/spec/replicas",)) == (False, [])
    assert check(git, live) == (False, [])  # the merge keeps what others set anyway


def test_annotation_alone_is_not_drift() -> None:
    live = served(WEB)
    live["metadata"]["annotations"][LAST_APPLIED] = '{"stale":true}\n'
    assert is_out_of_sync(None, WEB, live, DEPLOYMENT, []) is False


def test_in_sync_after_the_apply_it_predicts() -> None:
    live = put(served(WEB), "/spec/replicas", 5)
    git = put(WEB, "/spec/template/spec/containers/0/image", "nginx:1.28")
    assert check(git, live)[0] is True
    healed = apply_three_way(last_applied_of(live), git, live, DEPLOYMENT)
    assert healed["spec"]["replicas"] == 3
    assert check(git, healed) == (False, [])


def test_custom_resource_uses_json_merge() -> None:
    widget: JSON = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1, "tags": ["a"]},
    }
    live = put(desired_with_annotation(widget), "/spec/size", 2)
    live = put(live, "/spec/extra", True)
    applied = last_applied_of(live)
    assert is_out_of_sync(applied, widget, live, None, []) is True
    assert drifted_paths(applied, widget, live, None, []) == ["/spec/size"]
    assert is_out_of_sync(applied, widget, live, None, ["/spec/size"]) is False


def test_inputs_untouched() -> None:
    live = put(served(WEB), "/spec/replicas", 5)
    saved = copy.deepcopy((WEB, live))
    check(WEB, live, ("/spec/replicas", "/spec/template/spec/containers/0/image"))
    assert (WEB, live) == saved
