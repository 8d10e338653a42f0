"""The strict definitions are derived from the lenient ones (`definitions._closed`) instead of
read from the package's strict files: the derivation must give those files exactly, for
every shipped version, and must share what it does not change (the point of deriving)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.schema import definitions


def _nodes(value: Any) -> list[int]:
    """The ids of every dict and list in `value`."""
    found: list[int] = []
    waiting = [value]
    while waiting:
        node = waiting.pop()
        if isinstance(node, dict):
            found.append(id(node))
            waiting.extend(node.values())
        elif isinstance(node, list):
            found.append(id(node))
            waiting.extend(node)
    return found


@pytest.mark.parametrize("version", definitions.available_versions())
def test_the_derived_strict_definitions_are_the_shipped_ones(version: str) -> None:
    shipped = json.loads(definitions.strict_file(version).read_text())["$defs"]
    derived = definitions.load(version, strict=True)
    assert derived.strict and derived.version == version
    # The same text: the same keys in the same order (a schema's keyword order can decide
    # the order errors are reported in), the same values.
    assert json.dumps(derived.defs) == json.dumps(shipped)


def test_the_strict_definitions_share_what_they_do_not_change() -> None:
    lenient = definitions.load()
    strict = definitions.load(strict=True)
    lenient_nodes = set(_nodes(lenient.defs))
    strict_nodes = _nodes(strict.defs)
    shared = sum(1 for node in strict_nodes if node in lenient_nodes)
    assert shared > 0.9 * len(strict_nodes), f"{shared} of {len(strict_nodes)} shared"
    # What was closed is a new dict; the lenient one is untouched.
    deployment = "io.k8s.api.apps.v1.Deployment"
    assert strict.defs[deployment]["additionalProperties"] is False
    assert "additionalProperties" not in lenient.defs[deployment]


def test_a_version_and_its_default_are_one_load() -> None:
    newest = definitions.newest_version()
    for strict in (False, True):
        assert definitions.load(None, strict=strict) is definitions.load(newest, strict=strict)
        assert definitions.load(strict=strict) is definitions.load(newest, strict=strict)
