"""Loading manifests from files, directories and stdin, remembering where everything came from.

Every later error — a schema violation, a duplicate, a failed apply — names the file and the
line of the offending field (`Manifest.line_of`). Values are parsed by libyaml (PyYAML's C
loader, Kubernetes' YAML reading: timestamps stay strings, duplicate keys are errors); field
lines are worked out from the same parser's nodes only when an error asks for one. (The
architecture names ruamel.yaml here; its pure-Python round-trip loader was twelve times
slower and missed the validation throughput target — see docs/benchmarks.md.)

Rules: directories are read recursively in name order, skipping hidden entries; `.yaml`,
`.yml` and `.json` files count; empty documents are skipped; `kind: List` is expanded into
its items; a directory with a `kustomization.yaml` is rendered with `kubectl kustomize`
instead of being read file by file. Every problem is collected (`ManifestSet.errors`); the
objects that did load are still returned, so one run reports everything at once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

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


class _FileLines:
    """Field lines of a file's documents, worked out only when an error needs one: parsing
    for values is done by libyaml, which is several times faster than keeping marks."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._nodes: list[yaml.Node] | None = None

    def lines(self, document: int, prefix: PathParts) -> dict[PathParts, int]:
        if self._nodes is None:
            try:
                self._nodes = list(yaml.compose_all(self._text, Loader=_Loader))
            except yaml.YAMLError:
                self._nodes = []
        if document >= len(self._nodes):
            return {}
        found: dict[PathParts, int] = {}
        _node_lines(self._nodes[document], (), found)
        if prefix:
            return {k[len(prefix) :]: v for k, v in found.items() if k[: len(prefix)] == prefix}
        return found


def _node_lines(node: yaml.Node, path: PathParts, into: dict[PathParts, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            into[child] = key.start_mark.line + 1
            _node_lines(value, child, into)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            into[child] = item.start_mark.line + 1
            _node_lines(item, child, into)


@dataclass(frozen=True)
class Manifest:
    obj: JSONDict
    source: Source
    file_lines: _FileLines | None = field(default=None, compare=False, repr=False)
    prefix: PathParts = field(default=(), compare=False, repr=False)

    def line_of(self, parts: Sequence[str | int]) -> int:
        """The line of the deepest known prefix of `parts` (the object's line at worst)."""
        if self.file_lines is None:
            return self.source.line
        lines = self.file_lines.lines(self.source.document, self.prefix)
        path = tuple(parts)
        while path:
            if path in lines:
                return lines[path]
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


class _Loader(yaml.CSafeLoader):
    """libyaml with Kubernetes' reading of YAML: timestamps stay strings (as `kubectl`
    reads them), and a key given twice in one mapping is an error, not silently the last."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = key_node.value
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {key!r} is defined twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _document_lines(text: str) -> list[int]:
    """The 1-based line where each document's content starts (libyaml events: cheap)."""
    starts: list[int] = []
    waiting = False
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.DocumentStartEvent):
            waiting = True
        elif waiting and isinstance(event, yaml.NodeEvent):
            starts.append(event.start_mark.line + 1 if event.start_mark is not None else 1)
            waiting = False
    return starts


def _documents(text: str, file: str, into: ManifestSet) -> None:
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
        lines = _document_lines(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        column = f":{mark.column + 1}" if mark is not None else ""
        problem = e.problem or e.context or "invalid YAML"
        into.errors.append(LoadError(file, line, f"YAML syntax error{column}: {problem}"))
        return
    except yaml.YAMLError as e:
        into.errors.append(LoadError(file, 0, f"YAML error: {e}"))
        return
    file_lines = _FileLines(text)
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        line = lines[index] if index < len(lines) else 1
        if not isinstance(doc, dict):
            into.errors.append(
                LoadError(
                    file,
                    line,
                    "a document must be a mapping (an object), not "
                    + ("a list" if isinstance(doc, list) else f"a {type(doc).__name__}"),
                )
            )
            continue
        _add(_stringify_keys(doc), Source(file, line, index), file_lines, (), into)


def _stringify_keys(value: Any) -> Any:
    """JSON has only string keys (`80: x` in YAML is the key "80" for Kubernetes too)."""
    if isinstance(value, dict):
        return {str(k): _stringify_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_keys(v) for v in value]
    return value


def _add(
    obj: JSONDict,
    source: Source,
    file_lines: _FileLines | None,
    prefix: PathParts,
    into: ManifestSet,
) -> None:
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        lines = file_lines.lines(source.document, prefix) if file_lines else {}
        for index, item in enumerate(obj["items"]):
            item_line = lines.get(("items", index), source.line)
            if not isinstance(item, dict):
                into.errors.append(
                    LoadError(
                        source.file, item_line, f"items[{index}]: a list item must be an object"
                    )
                )
                continue
            _add(
                item,
                Source(source.file, item_line, source.document),
                file_lines,
                (*prefix, "items", index),
                into,
            )
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
    into.manifests.append(Manifest(obj, source, file_lines, prefix))


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
    origins = _kustomize_sources(directory, kfile)
    for m in rendered.manifests:
        origin = origins.get((m.kind, m.name))
        if origin is not None:
            # Errors point into the file the user wrote; fields kustomize added (labels,
            # namespace) fall back to the line where that object starts.
            into.manifests.append(Manifest(m.obj, origin.source, origin.file_lines, origin.prefix))
            continue
        source = Source(
            f"{kfile} (rendered document {m.source.document + 1})", 0, m.source.document
        )
        into.manifests.append(Manifest(m.obj, source))
    into.errors.extend(rendered.errors)


def _kustomize_sources(directory: Path, kfile: Path) -> dict[tuple[str, str], Manifest]:
    """(kind, rendered name) -> the document a rendered object came from, for objects that
    exactly one source document (under the kustomization or the folders it lists as
    resources) explains, taking `namePrefix` / `nameSuffix` into account."""
    try:
        config = yaml.load(kfile.read_text(), Loader=_Loader) or {}
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(config, dict):
        return {}
    prefix, suffix = str(config.get("namePrefix") or ""), str(config.get("nameSuffix") or "")
    roots = [directory]
    for entry in [*(config.get("resources") or []), *(config.get("bases") or [])]:
        target = (directory / str(entry)).resolve()
        if target.is_dir() and directory.resolve() not in target.parents:
            roots.append(target)
    found: dict[tuple[str, str], list[Manifest]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix not in SUFFIXES or path.name in KUSTOMIZATION_FILES:
                continue
            loaded = ManifestSet()
            try:
                _documents(path.read_text(), str(path), loaded)
            except (OSError, UnicodeDecodeError):
                continue
            for m in loaded.manifests:
                found.setdefault((m.kind, f"{prefix}{m.name}{suffix}"), []).append(m)
    return {key: docs[0] for key, docs in found.items() if len(docs) == 1}


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
