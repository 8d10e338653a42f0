"""Loading manifests from files, directories and stdin, remembering where everything came from.

Every later error — a schema violation, a duplicate, a failed apply — names the file and the
line of the offending field, so objects are loaded with ruamel.yaml's round-trip loader and
converted to plain dicts together with a map from field path to line (`Manifest.line_of`).

Rules: directories are read recursively in name order, skipping hidden entries; `.yaml`,
`.yml` and `.json` files count; empty documents are skipped; `kind: List` is expanded into
its items; a directory with a `kustomization.yaml` is rendered with `kubectl kustomize`
instead of being read file by file. Every problem is collected (`ManifestSet.errors`); the
objects that did load are still returned, so one run reports everything at once.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

JSONDict = dict[str, Any]
PathParts = tuple[str | int, ...]

SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class Source:
    file: str
    line: int  # 1-based line of the object's first key
    document: int  # 0-based document index in the file (or rendered stream)


@dataclass(frozen=True)
class LoadError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.line
            else (f"{self.file}: {self.message}")
        )


@dataclass(frozen=True)
class Manifest:
    obj: JSONDict
    source: Source
    lines: dict[PathParts, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, parts: Sequence[str | int]) -> int:
        """The line of the deepest known prefix of `parts` (the object's line at worst)."""
        path = tuple(parts)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.source.line

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        meta = self.obj.get("metadata") or {}
        return str(meta.get("name") or meta.get("generateName") or "")

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    @property
    def where(self) -> str:
        return f"{self.source.file}:{self.source.line}"

    def identity(self) -> tuple[str, str, str, str]:
        group = self.api_version.rpartition("/")[0]
        return (group, self.kind, self.namespace, self.name)


@dataclass
class ManifestSet:
    manifests: list[Manifest] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)

    def __iter__(self) -> Iterator[Manifest]:
        return iter(self.manifests)

    def __len__(self) -> int:
        return len(self.manifests)


class ManifestError(Exception):
    """Loading cannot even start (a path that does not exist, no kubectl for kustomize)."""


def _plain(node: Any, path: PathParts, lines: dict[PathParts, int], base: int) -> Any:
    """Convert ruamel nodes to plain Python, recording the line of every key and item."""
    if isinstance(node, CommentedMap):
        out: JSONDict = {}
        for key in node:
            child = (*path, str(key))
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                lines[child] = base + node.lc.key(key)[0] + 1
            out[str(key)] = _plain(node[key], child, lines, base)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            child = (*path, index)
            with contextlib.suppress(KeyError, TypeError, AttributeError, IndexError):
                lines[child] = base + node.lc.item(index)[0] + 1
            items.append(_plain(item, child, lines, base))
        return items
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _documents(text: str, file: str, into: ManifestSet, line_offset: int = 0) -> None:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        docs = list(yaml.load_all(io.StringIO(text)))
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        column = f":{mark.column + 1}" if mark is not None else ""
        problem = e.problem or e.context or "invalid YAML"
        into.errors.append(LoadError(file, line, f"YAML syntax error{column}: {problem}"))
        return
    except YAMLError as e:
        into.errors.append(LoadError(file, 0, f"YAML error: {e}"))
        return
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        line = doc.lc.line + 1 if hasattr(doc, "lc") and doc.lc.line is not None else 1
        if not isinstance(doc, CommentedMap):
            into.errors.append(
                LoadError(
                    file,
                    line + line_offset,
                    "a document must be a mapping (an object), not "
                    + ("a list" if isinstance(doc, list) else f"a {type(doc).__name__}"),
                )
            )
            continue
        lines: dict[PathParts, int] = {}
        obj = _plain(doc, (), lines, line_offset)
        _add(obj, Source(file, line + line_offset, index), lines, into)


def _add(obj: JSONDict, source: Source, lines: dict[PathParts, int], into: ManifestSet) -> None:
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        for index, item in enumerate(obj["items"]):
            item_line = lines.get(("items", index), source.line)
            if not isinstance(item, dict):
                into.errors.append(
                    LoadError(
                        source.file, item_line, f"items[{index}]: a list item must be an object"
                    )
                )
                continue
            prefix = ("items", index)
            item_lines = {k[2:]: v for k, v in lines.items() if k[:2] == prefix and len(k) > 2}
            _add(item, Source(source.file, item_line, source.document), item_lines, into)
        return
    missing = [f for f in ("apiVersion", "kind") if not obj.get(f)]
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        missing.append("metadata.name")
    if missing:
        into.errors.append(
            LoadError(source.file, source.line, f"missing required field(s): {', '.join(missing)}")
        )
        return
    into.manifests.append(Manifest(obj, source, lines))


def _render_kustomization(directory: Path, into: ManifestSet) -> None:
    kubectl = shutil.which("kubectl")
    kfile = next(directory / n for n in KUSTOMIZATION_FILES if (directory / n).exists())
    if kubectl is None:
        into.errors.append(
            LoadError(
                str(kfile),
                0,
                "kubectl not found: it is needed to render this kustomization (kubectl kustomize)",
            )
        )
        return
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        into.errors.append(
            LoadError(str(kfile), 0, f"kubectl kustomize failed: {result.stderr.strip()}")
        )
        return
    rendered = ManifestSet()
    _documents(result.stdout, f"{kfile} (rendered)", rendered)
    for m in rendered.manifests:
        source = Source(
            f"{kfile} (rendered document {m.source.document + 1})", 0, m.source.document
        )
        into.manifests.append(Manifest(m.obj, source, {}))
    into.errors.extend(rendered.errors)


def _walk(path: Path, into: ManifestSet) -> None:
    if path.is_dir():
        if any((path / n).exists() for n in KUSTOMIZATION_FILES):
            _render_kustomization(path, into)
            return
        for child in sorted(path.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_dir() or child.suffix in SUFFIXES:
                _walk(child, into)
        return
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        into.errors.append(LoadError(str(path), 0, f"cannot read: {e}"))
        return
    _documents(text, str(path), into)


def _check_duplicates(into: ManifestSet) -> None:
    seen: dict[tuple[str, str, str, str], Manifest] = {}
    for m in into.manifests:
        if not (m.obj.get("metadata") or {}).get("name"):
            continue  # generateName objects are new every time
        first = seen.get(m.identity())
        if first is not None:
            into.errors.append(
                LoadError(
                    m.source.file,
                    m.source.line,
                    f"duplicate object {m.kind}/{m.name}"
                    f"{' in namespace ' + m.namespace if m.namespace else ''}: "
                    f"also defined at {first.where}",
                )
            )
        else:
            seen[m.identity()] = m


def load_paths(paths: Sequence[str | Path], *, stdin: TextIO | None = None) -> ManifestSet:
    """Every object in `paths` (`-` reads stdin), with all load errors collected."""
    out = ManifestSet()
    for raw in paths:
        if str(raw) == "-":
            _documents((stdin or sys.stdin).read(), "<stdin>", out)
            continue
        path = Path(raw)
        if not path.exists():
            raise ManifestError(f"{path}: no such file or directory")
        _walk(path, out)
    _check_duplicates(out)
    return out
