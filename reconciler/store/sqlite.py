"""Durable object storage: SQLite in WAL mode with one global revision counter.

The store is to Recon what etcd is to Kubernetes: it keeps opaque JSON objects under
(resource, namespace, name) keys, stamps every write with the next value of one global,
monotonically increasing revision (which the API serves as `metadata.resourceVersion`),
refuses writes based on a stale revision, and tells watchers about every change in revision
order. It knows nothing about kinds.

Durability: each write is its own SQLite transaction, committed before the call returns, in
WAL mode with `synchronous=NORMAL`. A committed transaction is in the WAL file in the OS's
hands, so it survives `kill -9` of the server (what the API promises); only a power loss can
lose the last few commits, a trade the issue tracker documents.

Reads are served from an in-memory index kept in step with the database (objects as parsed
dicts plus their JSON text), so lists and gets never touch the disk. Objects returned by the
store are shared: callers must treat them as read-only and copy before changing them
(`Store.copy_of` is the cheap way, from the stored JSON text). What the store parses shares
its strings with every other object (`shared_json`): most of a parsed object's memory is
keys and values that its neighbours repeat.

Concurrency model: one asyncio loop owns the store; every method is synchronous and short,
so writes are serialised by construction and watch events are published in commit order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.store import shared_json
from reconciler.store.errors import AlreadyExistsError, ConflictError, NotFoundError
from reconciler.store.watch import Event, WatchHub

JSONDict = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    resource  TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    revision  INTEGER NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Stored:
    """One object as stored: its revision, its parsed body (read-only) and its JSON text."""

    revision: int
    body: JSONDict
    text: str


def _dumps(obj: JSONDict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Store:
    """Objects keyed by (resource, namespace, name); `namespace` is "" for cluster-scoped ones."""

    def __init__(self, path: Path | str, history: int = 20_000) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._index: dict[str, dict[tuple[str, str], Stored]] = {}
        for resource, namespace, name, revision, body in self._db.execute(
            "SELECT resource, namespace, name, revision, body FROM objects"
        ):
            self._index.setdefault(resource, {})[(namespace, name)] = Stored(
                revision, shared_json.loads(body), body
            )
        row = self._db.execute("SELECT value FROM meta WHERE key='revision'").fetchone()
        self._revision = int(row[0]) if row else 0
        self.hub = WatchHub(first_revision=self._revision, history=history)

    # -- reads -------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The revision of the newest write (0 for an empty store)."""
        return self._revision

    def get(self, resource: str, namespace: str, name: str) -> Stored:
        try:
            return self._index[resource][(namespace, name)]
        except KeyError:
            raise NotFoundError(f"{resource} {namespace}/{name} not found") from None

    def find(self, resource: str, namespace: str, name: str) -> Stored | None:
        return self._index.get(resource, {}).get((namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> list[Stored]:
        """All objects of a resource (in one namespace if given), ordered by namespace, name."""
        items = self._index.get(resource, {})
        keys = sorted(k for k in items if namespace is None or k[0] == namespace)
        return [items[k] for k in keys]

    def problem(self) -> str | None:
        """None when the database answers a query, else the error (for health reports)."""
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            return f"sqlite: {e}"
        return None

    def counts(self) -> dict[str, int]:
        """How many objects each resource holds (the API server's storage metrics)."""
        return {resource: len(items) for resource, items in self._index.items() if items}

    def iter_all(self) -> Iterator[tuple[str, Stored]]:
        """Every object of every resource: for the garbage collector's sweeps."""
        for resource, items in self._index.items():
            for stored in items.values():
                yield resource, stored

    @staticmethod
    def copy_of(stored: Stored) -> JSONDict:
        """A private, mutable copy of a stored object (its strings shared: they are immutable)."""
        return shared_json.loads(stored.text)  # type: ignore[no-any-return]

    # -- writes ------------------------------------------------------------------------

    def create(self, resource: str, namespace: str, name: str, obj: JSONDict) -> Stored:
        if self.find(resource, namespace, name) is not None:
            raise AlreadyExistsError(f"{resource} {namespace}/{name} already exists")
        return self._put("ADDED", resource, namespace, name, obj)

    def update(
        self,
        resource: str,
        namespace: str,
        name: str,
        obj: JSONDict,
        expected_revision: int | None = None,
    ) -> Stored:
        current = self.get(resource, namespace, name)
        if expected_revision is not None and expected_revision != current.revision:
            raise ConflictError(
                f"the object has been modified; please apply your changes to the latest "
                f"version and try again (have {expected_revision}, current {current.revision})"
            )
        return self._put("MODIFIED", resource, namespace, name, obj)

    def delete(
        self, resource: str, namespace: str, name: str, expected_revision: int | None = None
    ) -> Stored:
        """Remove an object; the returned copy carries the revision of the deletion."""
        current = self.get(resource, namespace, name)
        if expected_revision is not None and expected_revision != current.revision:
            raise ConflictError(
                f"the object has been modified (have {expected_revision}, "
                f"current {current.revision})"
            )
        revision = self._revision + 1
        body = self.copy_of(current)
        body.setdefault("metadata", {})["resourceVersion"] = str(revision)
        with self._transaction():
            self._db.execute(
                "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?",
                (resource, namespace, name),
            )
            self._set_revision(revision)
        del self._index[resource][(namespace, name)]
        stored = Stored(revision, body, _dumps(body))
        self.hub.publish(
            Event(
                "DELETED",
                resource,
                namespace,
                name,
                revision,
                body,
                current.body,
                stored.text,
                current.text,
            )
        )
        return stored

    def _put(self, kind: str, resource: str, namespace: str, name: str, obj: JSONDict) -> Stored:
        """Commit `obj` (which the store now owns: the caller must not change it afterwards)."""
        previous = self.find(resource, namespace, name)
        revision = self._revision + 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
        text = _dumps(obj)
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO objects (resource, namespace, name, revision, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (resource, namespace, name, revision, text),
            )
            self._set_revision(revision)
        stored = Stored(revision, obj, text)
        self._index.setdefault(resource, {})[(namespace, name)] = stored
        self.hub.publish(
            Event(
                kind,
                resource,
                namespace,
                name,
                revision,
                obj,
                previous.body if previous is not None else None,
                text,
                previous.text if previous is not None else None,
            )
        )
        return stored

    def _set_revision(self, revision: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('revision', ?)", (str(revision),)
        )
        self._revision = revision

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self.hub.close_all()
        self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error so the index never runs ahead."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
