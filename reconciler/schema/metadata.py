"""Validation of `metadata` that no JSON Schema expresses: name formats, labels, annotations.

Shared by the API server (every write) and `recon validate` (every file in git).

The upstream schemas say `metadata.name` is a string; the apiserver additionally enforces
DNS-1123 names, label syntax and size limits. Users put these mistakes in git, so each
error names the field (`metadata.labels`) and the rule, as the real apiserver does.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Cause:
    """One metadata problem: `field` like `metadata.labels`, and what is wrong."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Kinds whose names must be DNS-1123 labels (they become DNS names or path segments).
_LABEL_NAMED = frozenset({("", "Namespace"), ("", "Service")})

# Kinds whose names need only be valid path segments (upstream's `ValidatePathSegmentName`):
# RBAC's, whose bootstrap names carry colons (`system:basic-user`).
_PATH_SEGMENT_NAMED = frozenset(
    ("rbac.authorization.k8s.io", kind)
    for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
)

_ANNOTATIONS_MAX_BYTES = 256 * 1024


def name_errors(group: str, kind: str, name: str, field: str = "metadata.name") -> list[Cause]:
    if (group, kind) in _PATH_SEGMENT_NAMED:
        if name in (".", ".."):
            return [Cause(field, f"Invalid value: {name!r}: may not be '{name}'")]
        for bad in ("/", "%"):
            if bad in name:
                return [Cause(field, f"Invalid value: {name!r}: may not contain '{bad}'")]
        return []
    if (group, kind) in _LABEL_NAMED:
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            return [
                Cause(
                    field,
                    f"Invalid value: {name!r}: a lowercase RFC 1123 label must consist of lower "
                    "case alphanumeric characters or '-', and must start and end with an "
                    "alphanumeric character (max 63 characters)",
                )
            ]
        return []
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return [
            Cause(
                field,
                f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower "
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (max 253 characters)",
            )
        ]
    return []


def _qualified_key_errors(key: str, field: str) -> list[Cause]:
    prefix, slash, name = key.rpartition("/")
    problems = []
    if slash and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        problems.append(
            Cause(field, f"Invalid value: {key!r}: prefix part must be a DNS-1123 subdomain")
        )
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        problems.append(
            Cause(
                field,
                f"Invalid value: {key!r}: name part must consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character "
                "(max 63 characters)",
            )
        )
    return problems


def metadata_errors(group: str, kind: str, meta: JSONDict) -> list[Cause]:
    causes: list[Cause] = []
    name = meta.get("name")
    if isinstance(name, str) and name:
        causes += name_errors(group, kind, name)
    labels = meta.get("labels") or {}
    if isinstance(labels, dict):
        for key, value in labels.items():
            causes += _qualified_key_errors(key, "metadata.labels")
            if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
                causes.append(
                    Cause(
                        "metadata.labels",
                        f"Invalid value: {value!r}: a valid label must be an empty string or "
                        "consist of alphanumeric characters, '-', '_' or '.', and must start "
                        "and end with an alphanumeric character (max 63 characters)",
                    )
                )
    annotations = meta.get("annotations") or {}
    if isinstance(annotations, dict):
        for key in annotations:
            causes += _qualified_key_errors(key, "metadata.annotations")
        size = len(json.dumps(annotations))
        if size > _ANNOTATIONS_MAX_BYTES:
            causes.append(
                Cause(
                    "metadata.annotations",
                    f"Too long: must have at most {_ANNOTATIONS_MAX_BYTES} bytes",
                    "FieldValueTooLong",
                )
            )
    return causes


def secret_data_errors(obj: JSONDict) -> list[Cause]:
    """A Secret's `data` values must be base64 (the apiserver cannot decode them otherwise);
    the message never shows the value."""
    causes = []
    data = obj.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(value, str):
                continue
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                causes.append(
                    Cause(
                        f"data[{key}]", "Invalid value: not valid base64 (the value is not shown)"
                    )
                )
    return causes
