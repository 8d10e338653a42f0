"""Decoding with shared strings: the same values as `json.loads`, one object per string."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest

from reconciler.store import shared_json

DOCUMENTS = [
    '{"a": 1, "b": [1, 2.5, "x", null, true], "c": {"d": {"e": "f-1"}}}',
    '[{"k": "v"}, "s", 3]',
    '"just a string"',
    '{"a": 1, "a": 2}',
    '{"unicode": "\\u00e9t\\u00e9 \\ud83d\\ude00", "empty": {}, "list": []}',
    "12345678901234567890",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_decodes_exactly_as_json_loads(text: str) -> None:
    assert shared_json.loads(text) == json.loads(text)
    assert shared_json.loads(text.encode()) == json.loads(text.encode())
    assert shared_json.loads(text.encode("utf-16")) == json.loads(text.encode("utf-16"))


def test_keys_and_string_values_are_one_object_across_documents() -> None:
    one = shared_json.loads('{"metadata": {"name": "web-7c9f-x1"}, "n": 1}')
    two = shared_json.loads('{"metadata": {"name": "web-7c9f-x1"}, "n": 2}')
    assert one["metadata"] is not two["metadata"]  # containers stay each document's own
    assert one["metadata"]["name"] is two["metadata"]["name"]
    assert [k for k in one] == [k for k in two] and all(
        a is b for a, b in zip(one, two, strict=True)
    )


def test_invalid_json_raises_like_json_loads() -> None:
    with pytest.raises(ValueError):
        shared_json.loads('{"a": ')
    with pytest.raises(ValueError):
        shared_json.loads(b"\xff\xfe\xfd")


class Level(enum.IntEnum):
    HIGH = 3


VALUES: list[Any] = [
    {"a": [1, 2.5, "x", None, True, {"b": {}}], "c": ""},
    {"tuple": (1, "two"), 1: "int key", None: "null key", 2.5: "float key", False: "bool key"},
    [Level.HIGH, {"nested": (Level.HIGH,)}],
    "plain",
    7,
]


@pytest.mark.parametrize("value", VALUES)
def test_copy_is_the_json_round_trip(value: Any) -> None:
    copied = shared_json.copy(value)
    assert copied == json.loads(json.dumps(value))
    assert json.dumps(copied) == json.dumps(json.loads(json.dumps(value)))  # types too


def test_copy_shares_strings_not_containers() -> None:
    value = {"metadata": {"name": "web-7c9f-x2"}, "items": [{"k": "v-1"}]}
    copied = shared_json.copy(value)
    assert (
        copied["metadata"] is not value["metadata"] and copied["items"][0] is not value["items"][0]
    )
    again = shared_json.loads('{"metadata": {"name": "web-7c9f-x2"}}')
    assert copied["metadata"]["name"] is again["metadata"]["name"]


def test_copy_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        shared_json.copy({"when": object()})
