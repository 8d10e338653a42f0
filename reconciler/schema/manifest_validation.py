"""Validating a manifest set before anything is applied: every error, each at its line.

Built-in kinds are checked against the strict upstream schemas of the chosen Kubernetes
version (any served version, alpha and beta included: users target other clusters too);
custom resources against the CRDs found in the same set, passed in from a server, or found
in schema folders (the project's own `schemas/`); metadata against the apiserver's rules
(names, labels, annotations). A kind nobody declares is an error, not silently accepted.

Errors read `deploy/web.yaml:14: spec.template.spec.containers[0].ports[0].containerPort:
"eighty" is not of type "integer"`, with the line of the failing field itself. Secret
values never appear in a message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.manifests.loader import Manifest
from reconciler.schema import definitions
from reconciler.schema.kind_validators import KindValidators
from reconciler.schema.metadata import metadata_errors, secret_data_errors
from reconciler.schema.semantics import spec_errors
from reconciler.schema.validation import Validator, custom_resource_schema

JSONDict = dict[str, Any]

CRD_KIND = ("apiextensions.k8s.io", "CustomResourceDefinition")

# What kind of problem an issue is, for callers that relax some (Argo CD's `Validate=false`
# and `SkipDryRunOnMissingResource=true` sync options): any other is just an error.
UNKNOWN_FIELD = "unknown-field"
MISSING_REQUIRED = "missing-required"
UNKNOWN_KIND = "unknown-kind"

_REQUIRED = re.compile(r'^".*" is a required property$')


@dataclass(frozen=True, order=True)
class ValidationIssue:
    file: str
    line: int
    path: str
    message: str
    parts: tuple[str | int, ...] = field(default=(), compare=False)
    """The failing field's path in the object (`path` is its text)."""
    cause: str = field(default="", compare=False)
    """UNKNOWN_FIELD, MISSING_REQUIRED, UNKNOWN_KIND or "" (anything else)."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@functools.cache
def _validators(
    version: str | None,
) -> tuple[KindValidators, dict[tuple[str, str, str], str]]:
    defs = definitions.load(version, strict=True)
    kinds = {(g.group, g.version, g.kind): name for g, name in defs.kinds().items()}
    return KindValidators(defs), kinds


def crds_in_dirs(dirs: Iterable[Path]) -> list[JSONDict]:
    """CustomResourceDefinitions found in YAML/JSON files of `dirs` (e.g. the repo's schemas/)."""
    found: list[JSONDict] = []
    for directory in dirs:
        for path in sorted(Path(directory).rglob("*")):
            if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
                continue
            for doc in yaml.safe_load_all(path.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    found.append(doc)
    return found


class ManifestValidator:
    def __init__(
        self,
        kubernetes_version: str | None = None,
        extra_crds: Sequence[JSONDict] = (),
        schema_dirs: Sequence[Path] = (),
    ) -> None:
        self.version = definitions.load(kubernetes_version, strict=True).version
        self._builtin, self._kinds = _validators(kubernetes_version)
        self._crds: dict[tuple[str, str, str], JSONDict] = {}
        for crd in [*crds_in_dirs(schema_dirs), *extra_crds]:
            self.add_crd(crd)
        self._crd_validators: dict[tuple[str, str, str], Validator] = {}

    def add_crd(self, crd: JSONDict) -> None:
        spec = crd.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
            self._crds[(str(spec.get("group")), str(version.get("name")), str(kind))] = schema

    def _validator_for(self, m: Manifest) -> Validator | None:
        group, _, version = m.api_version.rpartition("/")
        key = (group, version, m.kind)
        name = self._kinds.get(key)
        if name is not None:
            return self._builtin.for_definition(name)
        schema = self._crds.get(key)
        if schema is None:
            return None
        validator = self._crd_validators.get(key)
        if validator is None:
            validator = self._crd_validators[key] = Validator(
                custom_resource_schema(schema, m.api_version, m.kind)
            )
        return validator

    def prepare(self, manifests: Sequence[Manifest]) -> None:
        """Take the kinds the set's own CRDs declare, before `validate_one` of its objects."""
        for m in manifests:  # CRDs in the same set declare kinds for the rest of it
            if (m.api_version.rpartition("/")[0], m.kind) == CRD_KIND:
                self.add_crd(m.obj)
        self._crd_validators.clear()

    def validate(self, manifests: Sequence[Manifest]) -> list[ValidationIssue]:
        self.prepare(manifests)
        issues: list[ValidationIssue] = []
        for m in manifests:
            issues.extend(self.validate_one(m))
        return sorted(issues)

    def validate_one(self, m: Manifest) -> list[ValidationIssue]:
        file = m.source.file
        validator = self._validator_for(m)
        if validator is None:
            return [
                ValidationIssue(
                    file,
                    m.source.line,
                    "",
                    f"unknown kind {m.kind!r} in apiVersion {m.api_version!r}: no schema in "
                    f"Kubernetes {self.version} and no CustomResourceDefinition declares it",
                    cause=UNKNOWN_KIND,
                )
            ]
        issues = []
        secret = (m.api_version, m.kind) == ("v1", "Secret")
        for err in validator.errors(m.obj):
            message = err.message
            if secret and err.path.startswith(("data", "stringData")):
                message = "invalid value (Secret values are not shown)"
            reason = UNKNOWN_FIELD if err.unknown_field else ""
            if not reason and _REQUIRED.match(err.message):
                reason = MISSING_REQUIRED
            issues.append(
                ValidationIssue(file, m.line_of(err.parts), err.path, message, err.parts, reason)
            )
        if secret:
            for cause in secret_data_errors(m.obj):
                key = cause.field.removeprefix("data[").removesuffix("]")
                issues.append(
                    ValidationIssue(file, m.line_of(("data", key)), cause.field, cause.message)
                )
        meta = m.obj.get("metadata")
        group, _, version = m.api_version.rpartition("/")
        if isinstance(meta, dict):
            for cause in metadata_errors(group, m.kind, meta):
                parts = tuple(cause.field.split("."))
                issues.append(ValidationIssue(file, m.line_of(parts), cause.field, cause.message))
        if not issues and (group, version, m.kind) in self._kinds:  # built-in kinds only
            for rule in spec_errors(group, m.kind, m.obj):
                issues.append(
                    ValidationIssue(file, m.line_of(rule.parts), rule.field, rule.message)
                )
        return issues


PROJECT_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def project_schema_dirs() -> list[Path]:
    """The project's own schemas (the Application CRD), when this is a source checkout."""
    return [PROJECT_SCHEMAS] if PROJECT_SCHEMAS.is_dir() else []
