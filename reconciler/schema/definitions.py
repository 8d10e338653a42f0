"""The upstream Kubernetes schema definitions, as shipped in the `kubernetes-validate` package.

Everything that needs to know what a Kubernetes kind looks like (the API server's list of
kinds, write validation, OpenAPI documents, strategic-merge patch metadata) reads it from
here, so there is exactly one source of truth and no hand-written schema.

The package ships one `_definitions.json` per Kubernetes version (draft 2020-12, refs of the
form `#/$defs/<name>`), in a lenient flavour and a `-strict` flavour that forbids unknown
fields. The strict one differs only by `"additionalProperties": false` closing every schema
that lists `properties` and says nothing of others, so it is derived from the lenient one
(`_closed`) instead of read: both are loaded in every `recon serve` (the strict one for write
validation and a sync's render), and the derived one shares every part it does not change,
0.2 MB instead of 3.7 MB of parsed JSON. `tests/unit/schema/test_definitions.py` checks the
derivation against the shipped strict files of every version, key order included.
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
    return _load(_normalise_version(version), strict)


@functools.cache
def _load(version: str, strict: bool) -> Definitions:
    if strict:
        lenient = _load(version, False).defs
        return Definitions(version, True, {name: _closed(s) for name, s in lenient.items()})
    with (_SCHEMA_ROOT / f"v{version}-local" / "_definitions.json").open() as fh:
        document = json.load(fh)
    return Definitions(version=version, strict=False, defs=document["$defs"])


def strict_file(version: str) -> Path:
    """The package's own strict flavour, which `_closed` reproduces (for the tests)."""
    return _SCHEMA_ROOT / f"v{_normalise_version(version)}-local-strict" / "_definitions.json"


_SUBSCHEMA = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def _closed(schema: Any) -> Any:
    """`schema` as the strict flavour has it: every schema with `properties` and no
    `additionalProperties` closed with `"additionalProperties": false` (added last, as in
    the shipped files). What needs no change is returned as is, shared with the lenient
    definitions; nothing changes either of them after loading."""
    if not isinstance(schema, dict):
        return schema
    changed: JSONDict = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            properties = {name: _closed(sub) for name, sub in value.items()}
            if any(properties[name] is not sub for name, sub in value.items()):
                changed[key] = properties
        elif key in _SUBSCHEMA and isinstance(value, dict):
            sub = _closed(value)
            if sub is not value:
                changed[key] = sub
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            subs = [_closed(sub) for sub in value]
            if any(new is not old for new, old in zip(subs, value, strict=True)):
                changed[key] = subs
    close = "properties" in schema and "additionalProperties" not in schema
    if not changed and not close:
        return schema
    out = {key: changed.get(key, value) for key, value in schema.items()}
    if close:
        out["additionalProperties"] = False
    return out
