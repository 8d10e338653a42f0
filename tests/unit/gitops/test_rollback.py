"""Rollback choices and the automated-sync switch, as `recon rollback` and `recon app set`
use them."""

from __future__ import annotations

import json

import pytest

from reconciler.gitops.rollback import (
    AUTOMATED_BEFORE_ROLLBACK,
    RollbackError,
    automation_patch,
    choose_entry,
    pause_automation_patch,
)

HISTORY = [
    {"id": 1, "revision": "aaa", "phase": "Succeeded"},
    {"id": 2, "revision": "bbb", "phase": "Succeeded"},
    {"id": 3, "revision": "ccc", "phase": "Failed"},
    {"id": 4, "revision": "ccc", "phase": "Succeeded"},
]


def test_default_is_the_newest_success_of_another_revision() -> None:
    assert choose_entry(HISTORY, "ccc", None)["id"] == 2


def test_a_given_id_is_taken_as_is() -> None:
    assert choose_entry(HISTORY, "ccc", 1)["revision"] == "aaa"


def test_an_unknown_id_names_the_known_ones() -> None:
    with pytest.raises(RollbackError, match=r"no history entry 9 \(known ids: 1, 2, 3, 4\)"):
        choose_entry(HISTORY, "ccc", 9)


def test_nothing_to_roll_back_to() -> None:
    with pytest.raises(RollbackError, match="HISTORY_ID"):
        choose_entry(HISTORY[3:], "ccc", None)


def app(automated: object = None, annotations: dict[str, str] | None = None) -> dict[str, object]:
    policy = {"interval": "60s"} if automated is None else {"automated": automated}
    return {
        "metadata": {"name": "shop", "annotations": annotations or {}},
        "spec": {"syncPolicy": policy},
    }


def test_pausing_remembers_the_automated_policy() -> None:
    patch = pause_automation_patch(app({"prune": True, "selfHeal": False}))
    assert patch is not None
    assert patch["spec"] == {"syncPolicy": {"automated": None}}
    remembered = patch["metadata"]["annotations"][AUTOMATED_BEFORE_ROLLBACK]
    assert json.loads(remembered) == {"prune": True, "selfHeal": False}


def test_pausing_a_manual_app_changes_nothing() -> None:
    assert pause_automation_patch(app()) is None


def test_reenabling_restores_the_remembered_policy_and_forgets_it() -> None:
    paused = app(annotations={AUTOMATED_BEFORE_ROLLBACK: '{"prune": true, "selfHeal": true}'})
    patch = automation_patch(paused, True)
    assert patch["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert patch["metadata"]["annotations"] == {AUTOMATED_BEFORE_ROLLBACK: None}


def test_flags_given_win_over_the_remembered_ones() -> None:
    paused = app(annotations={AUTOMATED_BEFORE_ROLLBACK: '{"prune": true, "selfHeal": true}'})
    patch = automation_patch(paused, True, self_heal=False)
    assert patch["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": False}


def test_enabling_keeps_current_flags_and_disabling_clears_them() -> None:
    current = app({"prune": False, "selfHeal": True})
    assert automation_patch(current, True, prune=True)["spec"]["syncPolicy"]["automated"] == {
        "prune": True,
        "selfHeal": True,
    }
    assert automation_patch(current, False)["spec"] == {"syncPolicy": {"automated": None}}
