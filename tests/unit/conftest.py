"""Checks every unit test passes under.

Stored objects are shared read-only: the in-process client hands the store's own objects to
every watcher (each informer's cache), and the store keeps each object's JSON text beside
it. A consumer that changed a cached object in place would change the API's data behind the
store's back; after every test, each object of every store the test opened must still say
what its stored text says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from reconciler.store.sqlite import Store


@pytest.fixture(autouse=True)
def stored_objects_are_never_changed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    opened: list[Store] = []
    init = Store.__init__

    def recording_init(self: Store, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(self)

    monkeypatch.setattr(Store, "__init__", recording_init)
    yield
    changed = [
        f"{resource} {namespace}/{name}"
        for store in opened
        for resource, stored in store.iter_all()
        for namespace, name in [
            (
                str(stored.body.get("metadata", {}).get("namespace", "")),
                str(stored.body.get("metadata", {}).get("name", "")),
            )
        ]
        if json.loads(stored.text) != stored.body
    ]
    assert not changed, f"stored objects changed in place (copy before changing): {changed}"
