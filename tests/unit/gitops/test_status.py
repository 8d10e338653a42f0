"""The Application status patches: what a sync, a dry run and a comparison record."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.gitops.follow import compared_after
from reconciler.gitops.health import Health
from reconciler.gitops.status import refresh_patch, sync_patch, wipe_out_refusal
from reconciler.gitops.sync import ResourceState, SyncOutcome

NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


def test_a_sync_adds_history_and_moves_the_applied_revision() -> None:
    patch = sync_patch({}, SyncOutcome("Succeeded", "ok", "abc"), NOW, NOW, "recon sync")
    assert [h["revision"] for h in patch["history"]] == ["abc"]
    assert patch["lastAppliedRevision"] == "abc"


def test_a_dry_run_records_only_its_operation() -> None:
    status = {"history": [{"id": 1, "revision": "old"}], "lastAppliedRevision": "old"}
    outcome = SyncOutcome("Succeeded", "dry run: ok", "new", dry_run=True)
    patch = sync_patch(status, outcome, NOW, NOW, "recon sync")
    assert set(patch) == {"operationState"}
    assert patch["operationState"]["dryRun"] is True
    assert patch["operationState"]["syncResult"]["revision"] == "new"


def test_a_comparison_names_the_sync_it_came_after() -> None:
    status = {"operationState": {"requestedAt": "2026-12-03T09:59:59Z"}}
    patch = refresh_patch(status, "abc", [], 3, NOW)
    assert patch["observedOperation"] == "2026-12-03T09:59:59Z"
    assert patch["reconciledAt"] == "2026-12-03T10:00:00Z"
    assert refresh_patch({}, "abc", [], 3, NOW)["observedOperation"] is None


def test_objects_that_left_git_make_it_out_of_sync_and_are_listed_for_pruning() -> None:
    kept = ResourceState("v1", "ConfigMap", "shop", "kept", "Synced", Health("Healthy"))
    left = ResourceState(
        "apps/v1",
        "Deployment",
        "shop",
        "old",
        "OutOfSync",
        Health("Healthy"),
        requires_pruning=True,
    )
    patch = refresh_patch({}, "abc", [kept, left], 3, NOW)
    assert patch["sync"] == {"status": "OutOfSync", "revision": "abc"}
    assert patch["resources"][1] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
        "name": "old",
        "namespace": "shop",
        "status": "OutOfSync",
        "health": {"status": "Healthy"},
        "requiresPruning": True,
    }
    assert "requiresPruning" not in patch["resources"][0]


def test_a_refused_automated_sync_is_a_sync_error_while_it_stands() -> None:
    refusal = wipe_out_refusal("abc")
    assert refusal == "Skipping sync attempt to abc: auto-sync will wipe out all resources"
    patch = refresh_patch({}, "abc", [], 3, NOW, refused=refusal)
    assert [(c["type"], c["message"]) for c in patch["conditions"]] == [("SyncError", refusal)]
    # Not refused any more (the policy or the render changed): the condition goes...
    assert refresh_patch(patch, "abc", [], 3, NOW)["conditions"] == []
    # ... but a failed sync's SyncError stays until a sync succeeds.
    failed = sync_patch({}, SyncOutcome("Failed", "1 of 1 objects failed", "abc"), NOW, NOW, "x")
    assert refresh_patch(failed, "abc", [], 3, NOW)["conditions"] == failed["conditions"]


def test_following_waits_for_a_comparison_after_the_request() -> None:
    request = "2026-12-03T10:00:00Z"
    before = {"operationState": {"requestedAt": request}, "observedOperation": "earlier"}
    assert not compared_after(before, request)
    assert compared_after({**before, "observedOperation": request}, request)
    newer = {"operationState": {"requestedAt": "later"}, "observedOperation": "later"}
    assert compared_after(newer, request)  # a newer sync took its place: read its comparison
    assert not compared_after({**newer, "observedOperation": request + "x"}, request)
    assert compared_after({}, None)
