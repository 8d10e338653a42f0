"""Loading: lines of every field, multi-document files, Lists, stdin, kustomize, errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from reconciler.manifests.loader import ManifestError, load_paths

DEPLOY = """\
# a comment first
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx
          ports:
            - containerPort: 80
---
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  a: "1"
"""


def test_lines_of_objects_fields_and_list_items(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(DEPLOY)
    loaded = load_paths([tmp_path])
    assert loaded.errors == []
    deploy, cm = loaded.manifests
    assert deploy.source.line == 2 and cm.source.line == 16
    assert deploy.line_of(("spec", "template", "spec", "containers", 0, "image")) == 11
    assert (
        deploy.line_of(("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"))
        == 13
    )
    assert deploy.line_of(("spec", "nothing", "here")) == 6  # deepest known prefix
    assert cm.obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg"},
        "data": {"a": "1"},
    }


def test_directories_are_recursive_sorted_and_skip_hidden(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.yaml").write_text("apiVersion: v1\nkind: X\nmetadata: {name: x}\n")
    (tmp_path / "b" / "two.yml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n"
    )
    (tmp_path / "a.json").write_text(
        '{"apiVersion": "v1", "kind": "ConfigMap",\n "metadata": {"name": "one"}}'
    )
    (tmp_path / "notes.txt").write_text("ignored")
    names = [m.name for m in load_paths([tmp_path]).manifests]
    assert names == ["one", "two"]


def test_kind_list_is_expanded_with_item_lines(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: a}\n"
        "  - apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: b\n"
    )
    loaded = load_paths([tmp_path / "list.yaml"])
    assert [(m.name, m.source.line) for m in loaded.manifests] == [("a", 4), ("b", 7)]
    assert loaded.manifests[1].line_of(("metadata", "name")) == 10


def test_stdin() -> None:
    loaded = load_paths(["-"], stdin=io.StringIO(DEPLOY))
    assert [m.source.file for m in loaded.manifests] == ["<stdin>", "<stdin>"]


def test_errors_are_all_collected_with_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dup}\n")
    (tmp_path / "b.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dup}\n---\n- not\n- a map\n"
        "---\nkind: ConfigMap\nmetadata: {name: x}\n"
    )
    (tmp_path / "c.yaml").write_text("apiVersion: v1\nkind: [unclosed\n")
    loaded = load_paths([tmp_path])
    messages = sorted(str(e) for e in loaded.errors)
    assert messages[0].startswith(f"{tmp_path}/b.yaml:1: duplicate object ConfigMap/dup")
    assert f"also defined at {tmp_path}/a.yaml:1" in messages[0]
    assert any(m.startswith(f"{tmp_path}/b.yaml:5: a document must be a mapping") for m in messages)
    assert any(
        m.startswith(f"{tmp_path}/b.yaml:8: missing required field(s): apiVersion")
        for m in messages
    )
    assert any(m.startswith(f"{tmp_path}/c.yaml:") and "YAML syntax error" in m for m in messages)
    assert [m.name for m in loaded.manifests] == ["dup", "dup"]


def test_missing_path_is_an_error() -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load_paths(["/does/not/exist"])


def test_kustomization_is_rendered_with_kubectl(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\nnamespace: shop\ncommonLabels: {team: a}\n"
    )
    loaded = load_paths([tmp_path])
    assert loaded.errors == []
    (cm,) = loaded.manifests
    assert cm.obj["metadata"] == {"name": "c", "namespace": "shop", "labels": {"team": "a"}}
    # Errors point into the file the object came from, not the rendered stream.
    assert cm.source.file == str(tmp_path / "cm.yaml")


def test_rendered_objects_map_back_to_their_source_lines(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
        "  replicas: 2\n  template: {}\n"
    )
    (base / "kustomization.yaml").write_text("resources: [deploy.yaml]\n")
    overlay = tmp_path / "prod"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "resources: [../base]\nnamePrefix: prod-\nconfigMapGenerator:\n"
        "  - {name: settings, literals: [a=b]}\n"
    )
    loaded = load_paths([overlay])
    by_kind = {m.kind: m for m in loaded.manifests}
    web = by_kind["Deployment"]
    assert web.name == "prod-web"
    assert web.source.file == str((base / "deploy.yaml").resolve())
    assert web.line_of(["spec", "replicas"]) == 6
    # A generated object has no source file: the rendered stream it is.
    assert "rendered document" in by_kind["ConfigMap"].source.file
