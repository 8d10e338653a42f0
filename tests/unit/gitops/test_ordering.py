"""Apply and prune order: kinds, sync waves, ties broken by namespace and name."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.manifests.ordering import (
    SYNC_WAVE,
    SyncWaveError,
    apply_order,
    prune_order,
    waves,
)


def obj(kind: str, name: str, wave: str | None = None, ns: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if wave is not None:
        meta["annotations"] = {SYNC_WAVE: wave}
    return {"kind": kind, "metadata": meta}


def names(items: list[dict[str, Any]]) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in items]


def test_kinds_follow_dependencies() -> None:
    mixed = [
        obj("Deployment", "web"),
        obj("Widget", "w"),
        obj("Service", "web"),
        obj("ConfigMap", "cfg"),
        obj("CustomResourceDefinition", "widgets.x"),
        obj("Namespace", "shop"),
        obj("Secret", "s"),
        obj("CronJob", "c"),
    ]
    assert names(apply_order(mixed, lambda o: o)) == [
        "Namespace/shop",
        "CustomResourceDefinition/widgets.x",
        "Secret/s",
        "ConfigMap/cfg",
        "Service/web",
        "Deployment/web",
        "CronJob/c",
        "Widget/w",
    ]
    assert names(prune_order(mixed, lambda o: o))[0] == "Widget/w"
    assert names(prune_order(mixed, lambda o: o))[-1] == "Namespace/shop"


def test_sync_waves_come_before_kinds() -> None:
    items = [
        obj("Namespace", "late", "2"),
        obj("Deployment", "db", "-1"),
        obj("ConfigMap", "cfg"),
        obj("Job", "migrate", "1"),
    ]
    grouped = waves(items, lambda o: o)
    assert [names(g) for g in grouped] == [
        ["Deployment/db"],
        ["ConfigMap/cfg"],
        ["Job/migrate"],
        ["Namespace/late"],
    ]


def test_ties_break_by_namespace_then_name() -> None:
    items = [
        obj("ConfigMap", "b", ns="x"),
        obj("ConfigMap", "a", ns="y"),
        obj("ConfigMap", "a", ns="x"),
    ]
    ordered = apply_order(items, lambda o: o)
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in ordered] == [
        ("x", "a"),
        ("x", "b"),
        ("y", "a"),
    ]


def test_bad_wave_names_the_object() -> None:
    with pytest.raises(SyncWaveError, match=r"ConfigMap/cfg.*'soon' is not an integer"):
        apply_order([obj("ConfigMap", "cfg", "soon")], lambda o: o)
