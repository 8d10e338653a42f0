"""JSON patch (RFC 6902) through apply_json_patch: the RFC's examples and the error mapping."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.merge import PatchError, PatchTestFailedError, apply_json_patch

# RFC 6902, Appendix A (the examples whose result is an object): (doc, ops, result)
APPENDIX_A: list[Any] = [
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
        id="A1-add-member",
    ),
    pytest.param(
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
        id="A2-add-array-element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
        id="A3-remove-member",
    ),
    pytest.param(
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
        id="A4-remove-array-element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
        id="A5-replace",
    ),
    pytest.param(
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        id="A6-move",
    ),
    pytest.param(
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
        id="A7-move-array-element",
    ),
    pytest.param(
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
        id="A8-test-success",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
        id="A10-add-nested-member",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
        id="A11-unrecognized-members-ignored",
    ),
    pytest.param(
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}],
        {"/": 9, "~1": 10},
        id="A14-escape-ordering",
    ),
    pytest.param(
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
        id="A16-add-array-value",
    ),
    pytest.param(
        {"a": {"b": 1}},
        [{"op": "copy", "from": "/a", "path": "/c"}],
        {"a": {"b": 1}, "c": {"b": 1}},
        id="copy",
    ),
    pytest.param({"a": 1}, [], {"a": 1}, id="no-ops"),
]


@pytest.mark.parametrize(("doc", "ops", "expected"), APPENDIX_A)
def test_rfc6902_appendix_a(doc: dict[str, Any], ops: list[Any], expected: Any) -> None:
    before = copy.deepcopy((doc, ops))
    assert apply_json_patch(doc, ops) == expected
    assert (doc, ops) == before


def test_kubernetes_style_scale_patch() -> None:
    deployment = {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a"}]}}}}
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "b"}},
        {"op": "add", "path": "/metadata", "value": {"labels": {"app.kubernetes.io/x": "y"}}},
    ]
    assert apply_json_patch(deployment, ops) == {
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}},
        },
        "metadata": {"labels": {"app.kubernetes.io/x": "y"}},
    }


@pytest.mark.parametrize(
    ("doc", "ops"),
    [
        pytest.param(
            {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], id="A9-test-error"
        ),
        pytest.param(
            {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], id="A15-10-vs-'10'"
        ),
        pytest.param({"a": True}, [{"op": "test", "path": "/a", "value": 1}], id="true-vs-1"),
        pytest.param({"a": 1}, [{"op": "test", "path": "/missing", "value": 1}], id="missing"),
    ],
)
def test_failed_test_op_raises_patch_test_failed(doc: dict[str, Any], ops: list[Any]) -> None:
    with pytest.raises(PatchTestFailedError, match="operation 0 \\(test /") as caught:
        apply_json_patch(doc, ops)
    assert isinstance(caught.value, PatchError)
    assert isinstance(caught.value, ValueError)


def test_failed_test_stops_the_patch_and_leaves_the_input_alone() -> None:
    doc = {"spec": {"replicas": 1}}
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "test", "path": "/spec/replicas", "value": 1},
    ]
    with pytest.raises(PatchTestFailedError, match=r"^operation 1 "):
        apply_json_patch(doc, ops)
    assert doc == {"spec": {"replicas": 1}}


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        pytest.param([{"op": "add", "path": "/baz/bat", "value": "qux"}], "operation 0", id="A12"),
        pytest.param([{"op": "remove", "path": "/nope"}], "does not exist", id="remove-missing"),
        pytest.param(
            [{"op": "replace", "path": "/nope", "value": 1}], "does not exist", id="replace-missing"
        ),
        pytest.param(
            [{"op": "move", "from": "/nope", "path": "/x"}], "does not exist", id="move-missing"
        ),
        pytest.param(
            [{"op": "add", "path": "/l/9", "value": 1}], "operation 0", id="index-past-end"
        ),
        pytest.param([{"op": "add", "path": "/l/x", "value": 1}], "operation 0", id="bad-index"),
        pytest.param(
            [{"op": "add", "path": "nope", "value": 1}], "must start with /", id="no-slash"
        ),
        pytest.param([{"op": "remove", "path": ""}], "operation 0", id="remove-root"),
        pytest.param(
            [{"op": "add", "path": "/a"}], "does not contain a 'value'", id="add-without-value"
        ),
        pytest.param([{"op": "frobnicate", "path": "/a"}], "Unknown operation", id="unknown-op"),
        pytest.param([{"path": "/a"}], "invalid JSON patch", id="no-op-member"),
        pytest.param([{"op": "add", "value": 1}], "invalid JSON patch", id="no-path"),
        pytest.param(["add"], "invalid JSON patch", id="op-not-an-object"),
        pytest.param(
            [{"op": "add", "path": 7, "value": 1}], "invalid JSON patch", id="path-not-str"
        ),
        pytest.param([{"op": "move", "path": "/x"}], "operation 0", id="move-without-from"),
    ],
)
def test_malformed_ops_raise_patch_error(ops: list[Any], message: str) -> None:
    doc = {"secret": "hunter2", "l": [1], "s": "str"}
    with pytest.raises(PatchError) as caught:
        apply_json_patch(doc, ops)
    assert not isinstance(caught.value, PatchTestFailedError)
    assert message in str(caught.value)
    # The library's own messages can quote the document; ours never do.
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("ops", [{"op": "add"}, "[]", None])
def test_ops_must_be_a_list(ops: Any) -> None:
    with pytest.raises(PatchError, match="must be an array of operations"):
        apply_json_patch({}, ops)


def test_result_must_be_an_object() -> None:
    with pytest.raises(PatchError, match="must be a JSON object, not array"):
        apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}])


def test_replacing_the_root_with_an_object_works() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}]) == {
        "b": 2
    }


def test_test_failure_message_does_not_quote_values() -> None:
    with pytest.raises(PatchTestFailedError) as caught:
        apply_json_patch(
            {"data": {"password": "hunter2"}},
            [{"op": "test", "path": "/data/password", "value": "guess-secret"}],
        )
    assert "hunter2" not in str(caught.value)
    assert "guess-secret" not in str(caught.value)
