"""What a no-op sync is spared: parsing a commit's files again, copying every object to
compare it. Both must not change what a sync decides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.client.inprocess import InProcessClient
from reconciler.gitops import sync
from reconciler.gitops.apply import comparable, same_content
from reconciler.gitops.render import load_and_validate
from tests.unit.gitops.test_sync import CONFIGMAP, Repo, _app, _engine, plane  # noqa: F401

JSONDict = dict[str, Any]

_BASE: JSONDict = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "a", "uid": "u1", "resourceVersion": "7", "labels": {"x": "1"}},
    "data": {"k": "v"},
    "status": {"s": 1},
}


def _with(**changes: Any) -> JSONDict:
    obj = {**_BASE, "metadata": dict(_BASE["metadata"])}
    for key, value in changes.items():
        if key.startswith("meta_"):
            obj["metadata"][key[5:]] = value
        elif value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


@pytest.mark.parametrize(
    "other",
    [
        _with(),
        _with(status={"s": 2}),  # status is the server's
        _with(status=None),
        _with(meta_uid="u2", meta_resourceVersion="8", meta_generation=3),  # server fields
        _with(data={"k": "w"}),
        _with(data=None),
        _with(meta_labels={"x": "2"}),
        _with(meta_annotations={}),  # an empty map is not an absent one
        _with(spec=None, extra=1),
        _with(metadata=None),
        _with(metadata={"name": "a"}),
    ],
)
def test_same_content_agrees_with_comparing_comparable_copies(other: JSONDict) -> None:
    assert same_content(_BASE, other) == (comparable(_BASE) == comparable(other))
    assert same_content(other, _BASE) == (comparable(other) == comparable(_BASE))


async def test_a_commit_is_rendered_once_until_the_cluster_crds_change(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []
    load = sync.load_and_validate

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(list(args[1]))
        return await load(*args, **kwargs)

    monkeypatch.setattr(sync, "load_and_validate", counting)
    repo = Repo(tmp_path / "repo")
    repo.write({"a.yaml": CONFIGMAP.format(name="one", value="v")})
    engine = _engine(plane, tmp_path)
    app = _app(repo)
    checkout = await engine.fetch(app)
    first = await engine.render(app, checkout)
    first.manifests.clear()  # a caller's list is its own
    again = await engine.render(app, checkout)
    assert len(calls) == 1 and [m.name for m in again.manifests] == ["one"]

    await plane.create(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                    }
                ],
            },
        }
    )
    await engine.render(app, checkout)
    assert len(calls) == 2  # validated again: the new CRD may matter

    repo.write({"b.yaml": CONFIGMAP.format(name="two", value="v")})
    newer = await engine.render(app, await engine.fetch(app))
    assert len(calls) == 3 and sorted(m.name for m in newer.manifests) == ["one", "two"]


async def test_a_kept_render_shares_its_strings_and_says_the_same(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write(
        {
            "a.yaml": CONFIGMAP.format(name="one", value="same-value"),
            "b.yaml": CONFIGMAP.format(name="two", value="same-value"),
        }
    )
    engine = _engine(plane, tmp_path)
    app = _app(repo)
    checkout = await engine.fetch(app)
    kept = await engine.render(app, checkout)
    fresh = await load_and_validate(plane, [str(checkout.path)], None)
    assert [m.obj for m in kept.manifests] == [m.obj for m in fresh.manifests]
    # Files named as the repository names them (results say `a.yaml:1`, as errors do).
    assert [m.where for m in kept.manifests] == ["a.yaml:1", "b.yaml:1"]
    one, two = (m.obj for m in kept.manifests)
    assert one["data"]["k"] is two["data"]["k"]  # one string for both documents
    assert next(iter(one)) is next(iter(two))
    assert all(m.file_lines is None for m in kept.manifests)  # the files' texts are not kept
