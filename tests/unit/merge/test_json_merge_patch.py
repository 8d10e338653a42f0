"""JSON merge patch (RFC 7386): the RFC's own examples, creation and round-trips."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.merge import apply_merge_patch, create_merge_patch

# RFC 7386, Appendix A: (original, patch, result)
APPENDIX_A: list[Any] = [
    pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="A1-replace-member"),
    pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="A2-add-member"),
    pytest.param({"a": "b"}, {"a": None}, {}, id="A3-remove-member"),
    pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="A4-remove-one-of-two"),
    pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="A5-array-to-string"),
    pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="A6-string-to-array"),
    pytest.param(
        {"a": {"b": "c"}},
        {"a": {"b": "d", "c": None}},
        {"a": {"b": "d"}},
        id="A7-nested-merge-and-remove",
    ),
    pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="A8-arrays-replace-whole"),
    pytest.param(["a", "b"], ["c", "d"], ["c", "d"], id="A9-array-replaces-array"),
    pytest.param({"a": "b"}, ["c"], ["c"], id="A10-array-replaces-object"),
    pytest.param({"a": "foo"}, None, None, id="A11-null-replaces-everything"),
    pytest.param({"a": "foo"}, "bar", "bar", id="A12-string-replaces-object"),
    pytest.param({"e": None}, {"a": 1}, {"e": None, "a": 1}, id="A13-existing-null-kept"),
    pytest.param([1, 2], {"a": "b", "c": None}, {"a": "b"}, id="A14-object-replaces-array"),
    pytest.param({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="A15-nested-new-null"),
]


@pytest.mark.parametrize(("original", "patch", "expected"), APPENDIX_A)
def test_rfc7386_appendix_a(original: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy((original, patch))
    assert apply_merge_patch(original, patch) == expected
    assert (original, patch) == before


def test_rfc7386_section_3_example() -> None:
    original = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert apply_merge_patch(original, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_result_shares_no_containers_with_inputs() -> None:
    original = {"keep": {"x": [1]}, "spec": {"a": 1}}
    patch = {"spec": {"list": [{"b": 2}]}}
    result = apply_merge_patch(original, patch)
    result["keep"]["x"].append(2)
    result["spec"]["list"][0]["b"] = 3
    assert original == {"keep": {"x": [1]}, "spec": {"a": 1}}
    assert patch == {"spec": {"list": [{"b": 2}]}}


# (original, modified, expected patch)
CREATE: list[Any] = [
    pytest.param({"a": 1}, {"a": 1}, {}, id="equal"),
    pytest.param({"a": 1, "b": 2}, {"a": 1}, {"b": None}, id="removed-member"),
    pytest.param({"a": 1}, {"a": 2, "c": 3}, {"a": 2, "c": 3}, id="changed-and-added"),
    pytest.param(
        {"spec": {"replicas": 1, "paused": False}},
        {"spec": {"replicas": 3, "paused": False}},
        {"spec": {"replicas": 3}},
        id="nested",
    ),
    pytest.param({"l": [1, 2]}, {"l": [2]}, {"l": [2]}, id="array-sent-whole"),
    pytest.param({"o": {"x": 1}}, {"o": "s"}, {"o": "s"}, id="object-to-scalar"),
    pytest.param({"o": "s"}, {"o": {"x": 1}}, {"o": {"x": 1}}, id="scalar-to-object"),
    pytest.param({"o": {"x": 1, "y": 2}}, {"o": {}}, {"o": {"x": None, "y": None}}, id="emptied"),
    pytest.param({"f": 1}, {"f": True}, {"f": True}, id="true-is-not-one"),
    pytest.param({"f": 1}, {"f": 1.0}, {}, id="numbers-by-value"),
    pytest.param([1], [2], [2], id="non-object-root"),
]


@pytest.mark.parametrize(("original", "modified", "expected"), CREATE)
def test_create_merge_patch(original: Any, modified: Any, expected: Any) -> None:
    patch = create_merge_patch(original, modified)
    assert patch == expected
    assert apply_merge_patch(original, patch) == modified


def test_round_trip_of_a_custom_resource() -> None:
    original: dict[str, Any] = {
        "apiVersion": "recon.dev/v1",
        "kind": "Application",
        "metadata": {"name": "app", "labels": {"a": "1"}},
        "spec": {"source": {"repo": "r", "path": "p"}, "syncWaves": [1, 2], "prune": True},
    }
    modified = copy.deepcopy(original)
    modified["metadata"]["labels"] = {"b": "2"}
    modified["spec"]["source"].pop("path")
    modified["spec"]["syncWaves"] = [3]
    modified["spec"]["selfHeal"] = {"enabled": True}
    patch = create_merge_patch(original, modified)
    assert patch == {
        "metadata": {"labels": {"a": None, "b": "2"}},
        "spec": {"source": {"path": None}, "syncWaves": [3], "selfHeal": {"enabled": True}},
    }
    assert apply_merge_patch(original, patch) == modified
