"""The store: revisions, optimistic concurrency, durability across reopen, watch fan-out."""

from __future__ import annotations

import asyncio
import gc
import types
from pathlib import Path

import pytest

from reconciler.store.errors import AlreadyExistsError, ConflictError, GoneError, NotFoundError
from reconciler.store.sqlite import Store


def cm(name: str, value: str = "1") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"v": value},
    }


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def test_revisions_increase_globally_and_stamp_resource_version(store: Store) -> None:
    a = store.create("core/configmaps", "default", "a", cm("a"))
    b = store.create("apps/deployments", "default", "b", {"metadata": {"name": "b"}})
    c = store.update("core/configmaps", "default", "a", cm("a", "2"))
    assert (a.revision, b.revision, c.revision) == (1, 2, 3)
    assert c.body["metadata"]["resourceVersion"] == "3"
    assert store.revision == 3


def test_create_twice_is_already_exists(store: Store) -> None:
    store.create("core/configmaps", "default", "a", cm("a"))
    with pytest.raises(AlreadyExistsError):
        store.create("core/configmaps", "default", "a", cm("a"))
    assert store.revision == 1


def test_stale_revision_is_a_conflict_and_stores_nothing(store: Store) -> None:
    first = store.create("core/configmaps", "default", "a", cm("a"))
    store.update("core/configmaps", "default", "a", cm("a", "2"), first.revision)
    with pytest.raises(ConflictError):
        store.update("core/configmaps", "default", "a", cm("a", "3"), first.revision)
    assert store.get("core/configmaps", "default", "a").body["data"] == {"v": "2"}


def test_missing_objects_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.get("core/configmaps", "default", "nope")
    with pytest.raises(NotFoundError):
        store.update("core/configmaps", "default", "nope", cm("nope"))
    with pytest.raises(NotFoundError):
        store.delete("core/configmaps", "default", "nope")


def test_delete_takes_a_revision_and_survives_reopen(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    s.create("core/configmaps", "default", "a", cm("a"))
    s.create("core/configmaps", "default", "b", cm("b"))
    gone = s.delete("core/configmaps", "default", "a")
    assert gone.revision == 3 and gone.body["metadata"]["resourceVersion"] == "3"
    s.close()
    reopened = Store(tmp_path / "db")
    assert reopened.revision == 3  # the counter never goes back, even after a delete
    assert [x.body["metadata"]["name"] for x in reopened.list("core/configmaps")] == ["b"]
    assert reopened.create("core/configmaps", "default", "c", cm("c")).revision == 4
    reopened.close()


def test_list_filters_by_namespace_in_name_order(store: Store) -> None:
    for ns, name in [("b", "z"), ("a", "y"), ("a", "x")]:
        store.create("core/configmaps", ns, name, cm(name))
    assert [s.body["metadata"]["name"] for s in store.list("core/configmaps")] == ["x", "y", "z"]
    assert [s.body["metadata"]["name"] for s in store.list("core/configmaps", "a")] == ["x", "y"]


async def test_watch_replays_then_streams_live_in_order(store: Store) -> None:
    store.create("core/configmaps", "default", "a", cm("a"))
    store.create("core/configmaps", "default", "b", cm("b"))
    watcher = store.hub.subscribe("core/configmaps", None, since=1)
    store.delete("core/configmaps", "default", "a")
    events = [await watcher.next(timeout=1) for _ in range(2)]
    assert [(e.type, e.name, e.revision) for e in events if e] == [
        ("ADDED", "b", 2),
        ("DELETED", "a", 3),
    ]
    watcher.close()
    assert await watcher.next(timeout=1) is None


async def test_a_replay_gives_every_version_with_its_previous(store: Store) -> None:
    first = store.create("core/configmaps", "default", "a", cm("a")).body
    second = store.update("core/configmaps", "default", "a", cm("a", "2")).body
    gone = store.delete("core/configmaps", "default", "a").body
    watcher = store.hub.subscribe("core/configmaps", None, since=0)
    events = [await watcher.next(timeout=1) for _ in range(3)]
    assert [(e.type, e.object, e.previous) for e in events if e] == [
        ("ADDED", first, None),
        ("MODIFIED", second, first),
        ("DELETED", gone, second),
    ]
    watcher.close()


def test_the_history_does_not_keep_superseded_versions_parsed(store: Store) -> None:
    """Past versions are kept as their JSON text: parsed, they cost 3-5 times as much."""
    old = store.create("core/configmaps", "default", "a", cm("a")).body
    store.update("core/configmaps", "default", "a", cm("a", "2"))
    gc.collect()
    holders = [r for r in gc.get_referrers(old) if not isinstance(r, types.FrameType)]
    assert holders == []


async def test_superseded_versions_are_kept_compressed_and_replay_whole(store: Store) -> None:
    big = "x" * 10_000
    for i in range(10):
        if i == 0:
            store.create("core/configmaps", "default", "a", cm("a", big))
        else:
            store.update("core/configmaps", "default", "a", cm("a", f"{big}{i}"))
    kept = [past.text for past in store.hub._history]  # what the history holds
    assert (
        isinstance(kept[-1], str) and kept[-1] is store.get("core/configmaps", "default", "a").text
    )
    assert all(isinstance(text, bytes) and len(text) < 1_000 for text in kept[:-1])
    watcher = store.hub.subscribe("core/configmaps", None, since=0)
    events = [await watcher.next(timeout=1) for _ in range(10)]
    assert [e.object["data"]["v"] for e in events if e] == [big] + [
        f"{big}{i}" for i in range(1, 10)
    ]
    assert [e.previous["data"]["v"] for e in events[1:] if e and e.previous] == [big] + [
        f"{big}{i}" for i in range(1, 9)
    ]
    watcher.close()


async def test_watch_filters_resource_and_namespace(store: Store) -> None:
    watcher = store.hub.subscribe("core/configmaps", "x", since=0)
    store.create("core/configmaps", "y", "a", cm("a"))
    store.create("core/secrets", "x", "s", {"metadata": {"name": "s"}})
    store.create("core/configmaps", "x", "b", cm("b"))
    event = await watcher.next(timeout=1)
    assert event is not None and (event.namespace, event.name) == ("x", "b")
    with pytest.raises(TimeoutError):
        await watcher.next(timeout=0.05)


async def test_watch_from_compacted_history_is_gone(tmp_path: Path) -> None:
    s = Store(tmp_path / "db", history=3)
    for i in range(6):
        s.create("core/configmaps", "default", f"c{i}", cm(f"c{i}"))
    with pytest.raises(GoneError):
        s.hub.subscribe("core/configmaps", None, since=1)
    watcher = s.hub.subscribe("core/configmaps", None, since=3)
    names = []
    for _ in range(3):
        event = await watcher.next(timeout=1)
        assert event is not None
        names.append(event.name)
    assert names == ["c3", "c4", "c5"]
    s.close()


async def test_history_starts_empty_after_restart(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    s.create("core/configmaps", "default", "a", cm("a"))
    s.create("core/configmaps", "default", "b", cm("b"))
    s.close()
    s = Store(tmp_path / "db")
    with pytest.raises(GoneError):
        s.hub.subscribe("core/configmaps", None, since=1)
    s.hub.subscribe("core/configmaps", None, since=2).close()
    s.close()


async def test_a_stuck_watcher_is_closed_not_grown_forever(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    s.hub._max_backlog = 5
    watcher = s.hub.subscribe("core/configmaps", None, since=0)
    for i in range(10):
        s.create("core/configmaps", "default", f"c{i}", cm(f"c{i}"))
    seen = 0
    while await watcher.next(timeout=1) is not None:
        seen += 1
    assert seen == 5 and watcher.closed and s.hub.watcher_count() == 0
    s.close()
    await asyncio.sleep(0)
