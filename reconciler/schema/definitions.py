"""The upstream Kubernetes schema definitions, as shipped in the `kubernetes-validate` package.

Everything that needs to know what a Kubernetes kind looks like (the API server's list of
kinds, write validation, OpenAPI documents, strategic-merge patch metadata) reads it from
here, so there is exactly one source of truth and no hand-written schema.

The package ships one `_definitions.json` per Kubernetes version (draft 2020-12, refs of the
form `#/$defs/<name>`), in a lenient flavour and a `-strict` flavour that forbids unknown
fields.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSONDict = dict[str, Any]


def _schema_root() -> Path:
    """The package's data folder, found without importing it (it pulls in jsonschema)."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the kubernetes-validate package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


_SCHEMA_ROOT = _schema_root()
_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local$")


class SchemaNotFoundError(LookupError):
    """The requested Kubernetes version has no schemas in the installed package."""


def available_versions() -> list[str]:
    """Kubernetes versions with shipped schemas, oldest first (e.g. `['1.25.0', ..., '1.37.0']`)."""
    found: list[tuple[tuple[int, int, int], str]] = []
    for entry in _SCHEMA_ROOT.iterdir():
        match = _VERSION_DIR.match(entry.name)
        if match:
            nums = (int(match[1]), int(match[2]), int(match[3]))
            found.append((nums, f"{nums[0]}.{nums[1]}.{nums[2]}"))
    return [name for _, name in sorted(found)]


def newest_version() -> str:
    return available_versions()[-1]


def _normalise_version(version: str | None) -> str:
    if version is None:
        return newest_version()
    version = version.lstrip("v")
    if version.count(".") == 1:
        version += ".0"
    if version not in available_versions():
        raise SchemaNotFoundError(
            f"no Kubernetes schemas for version {version}; "
            f"available: {', '.join(available_versions())}"
        )
    return version


@dataclass(frozen=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class Definitions:
    """All schema definitions of one Kubernetes version, keyed by their dotted Go names."""

    version: str
    strict: bool
    defs: JSONDict

    def get(self, name: str) -> JSONDict:
        return self.defs[name]  # type: ignore[no-any-return]

    def resolve(self, schema: JSONDict) -> JSONDict:
        """Follow a local `$ref` (one level) to the referenced definition."""
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return self.get(ref[len("#/$defs/") :])
        return schema

    def kinds(self) -> dict[GroupVersionKind, str]:
        """Every persisted top-level kind (it has `metadata`) mapped to its definition name."""
        out: dict[GroupVersionKind, str] = {}
        for name, schema in self.defs.items():
            gvks = schema.get("x-kubernetes-group-version-kind")
            props = schema.get("properties", {})
            if not gvks or "metadata" not in props or name.endswith("List"):
                continue
            for gvk in gvks:
                out[GroupVersionKind(gvk["group"], gvk["version"], gvk["kind"])] = name
        return out


@functools.cache
def load(version: str | None = None, strict: bool = False) -> Definitions:
    """Load (once per process) the definitions of a Kubernetes version; newest by default."""
    resolved = _normalise_version(version)
    folder = _SCHEMA_ROOT / f"v{resolved}-local{'-strict' if strict else ''}"
    with (folder / "_definitions.json").open() as fh:
        document = json.load(fh)
    return Definitions(version=resolved, strict=strict, defs=document["$defs"])
