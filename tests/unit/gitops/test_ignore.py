"""ignoreDifferences: pointers, rules, and an apply that never touches an ignored field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.gitops.apply import PatchMetas
from reconciler.gitops.ignore import (
    IgnoreRule,
    live_keeper,
    parse_pointer,
    parse_rules,
    respect_ignored,
    rules_for,
    strip_ignored,
)
from reconciler.merge.three_way import apply_three_way, desired_with_annotation, last_applied_of

JSON = dict[str, Any]
METAS = PatchMetas()
DEPLOYMENT = METAS.for_kind("apps/v1", "Deployment")


# --------------------------------------------------------------------------------------------
# pointers


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("/spec/replicas", ("spec", "replicas")),
        (
            "/spec/template/spec/containers/0/image",
            ("spec", "template", "spec", "containers", "0", "image"),
        ),
        (
            "/metadata/annotations/example.com~1owner",
            ("metadata", "annotations", "example.com/owner"),
        ),
        ("/a~0b", ("a~b",)),
        ("/~01", ("~1",)),  # not "/": `~0` is undone last (RFC 6901 section 4)
        ("/", ("",)),
        ("/a//b", ("a", "", "b")),
    ],
    ids=[
        "plain",
        "index",
        "slash-escape",
        "tilde-escape",
        "escape-order",
        "empty-key",
        "empty-middle",
    ],
)
def test_parse_pointer(pointer: str, tokens: tuple[str, ...]) -> None:
    assert parse_pointer(pointer) == tokens


@pytest.mark.parametrize(
    ("pointer", "why"),
    [
        ("spec/replicas", "must start with '/'"),
        (".spec.replicas", "must start with '/'"),
        ("", "must start with '/'"),
        ("/a~2b", "'~' must be written '~0'"),
        ("/a~", "'~' must be written '~0'"),
    ],
)
def test_invalid_pointer_names_it(pointer: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        parse_pointer(pointer)
    assert repr(pointer) in str(info.value)


# --------------------------------------------------------------------------------------------
# rules


def test_rule_from_spec() -> None:
    rule = IgnoreRule.from_spec(
        {"group": "apps", "kind": "Deployment", "name": "web", "jsonPointers": ["/spec/replicas"]}
    )
    assert rule == IgnoreRule(
        kind="Deployment", json_pointers=("/spec/replicas",), group="apps", name="web"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"kind": "Deployment", "jsonPointers": ["spec/replicas"]},
            r"\[1\]\.jsonPointers\[0\]: 'spec/replicas' is not a JSON pointer",
        ),
        (
            {"kind": "Deployment", "jsonPointers": ["/ok", 3]},
            r"\[1\]\.jsonPointers\[1\]: 3 is not a JSON pointer",
        ),
        (
            {"kind": "Deployment", "jsonPointers": [["/x"]]},
            r"\[1\]\.jsonPointers\[0\]: \['/x'\] is not a string",
        ),
        (
            {"kind": "Deployment", "jsonPointers": "/spec/replicas"},
            r"\[1\]\.jsonPointers: required",
        ),
        ({"jsonPointers": ["/spec"]}, r"\[1\]\.kind: required"),
        ({"kind": "Deployment", "group": 1, "jsonPointers": []}, r"\[1\]\.group: must be a string"),
        ("Deployment", r"\[1\]: must be an object"),
    ],
    ids=[
        "no-slash",
        "not-a-string",
        "unhashable",
        "pointers-not-list",
        "no-kind",
        "bad-group",
        "not-object",
    ],
)
def test_parse_rules_errors_name_the_entry(entry: Any, message: str) -> None:
    good = {"kind": "ConfigMap", "jsonPointers": ["/data"]}
    with pytest.raises(ValueError, match=r"^ignoreDifferences" + message):
        parse_rules([good, entry])


def test_parse_rules_empty() -> None:
    assert parse_rules(None) == ()
    assert parse_rules([]) == ()


def rule(**fields: Any) -> IgnoreRule:
    return IgnoreRule.from_spec({"jsonPointers": ["/x"], **fields})


@pytest.mark.parametrize(
    ("the_rule", "api_version", "kind", "name", "namespace", "expected"),
    [
        (rule(group="apps", kind="Deployment"), "apps/v1", "Deployment", "web", "prod", True),
        (rule(group="apps", kind="Deployment"), "apps/v1beta2", "Deployment", "web", "", True),
        (
            rule(group="apps", kind="Deployment"),
            "extensions/v1beta1",
            "Deployment",
            "web",
            "",
            False,
        ),
        (rule(group="apps", kind="Deployment"), "apps/v1", "StatefulSet", "web", "", False),
        (rule(kind="ConfigMap"), "v1", "ConfigMap", "cfg", "prod", True),  # empty group: core
        (rule(kind="Deployment"), "apps/v1", "Deployment", "web", "", False),
        (rule(group="", kind="Service"), "v1", "Service", "web", "", True),
        (
            rule(group="apps", kind="Deployment", name="web"),
            "apps/v1",
            "Deployment",
            "api",
            "",
            False,
        ),
        (
            rule(group="apps", kind="Deployment", name="web"),
            "apps/v1",
            "Deployment",
            "web",
            "x",
            True,
        ),
        (rule(kind="Secret", namespace="prod"), "v1", "Secret", "s", "prod", True),
        (rule(kind="Secret", namespace="prod"), "v1", "Secret", "s", "dev", False),
        (rule(kind="Secret", namespace="prod"), "v1", "Secret", "s", "", False),
        (rule(group="*", kind="*"), "example.com/v1", "Widget", "w", "", True),
        (rule(group="*", kind="Widget"), "v1", "Widget", "w", "", True),
        (rule(kind="deployment", group="apps"), "apps/v1", "Deployment", "web", "", False),
    ],
    ids=[
        "group-kind",
        "any-version",
        "other-group",
        "other-kind",
        "core-group-omitted",
        "omitted-group-is-core",
        "core-group-empty",
        "other-name",
        "name-any-namespace",
        "namespace",
        "other-namespace",
        "cluster-scoped",
        "wildcards",
        "wildcard-group",
        "kind-is-case-sensitive",
    ],
)
def test_rule_matches(
    the_rule: IgnoreRule, api_version: str, kind: str, name: str, namespace: str, expected: bool
) -> None:
    assert the_rule.matches(api_version, kind, name, namespace) is expected


def test_rules_for_collects_each_pointer_once() -> None:
    rules = parse_rules(
        [
            {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]},
            {"kind": "ConfigMap", "jsonPointers": ["/data"]},
            {
                "group": "apps",
                "kind": "Deployment",
                "name": "web",
                "jsonPointers": ["/a", "/spec/replicas"],
            },
            {"group": "apps", "kind": "Deployment", "name": "api", "jsonPointers": ["/b"]},
            {"group": "apps", "kind": "Deployment", "namespace": "dev", "jsonPointers": ["/c"]},
        ]
    )
    web = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod"},
    }
    assert rules_for(rules, web) == ["/spec/replicas", "/a"]
    assert rules_for(
        rules, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    ) == ["/data"]
    assert rules_for(rules, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}) == []
    assert rules_for((), web) == []


# --------------------------------------------------------------------------------------------
# respect_ignored: desired takes live's value, so the apply leaves the field alone


def obj(spec: JSON, **metadata: Any) -> JSON:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", **metadata},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("desired", "live", "pointers", "expected"),
    [
        ({"replicas": 3}, {"replicas": 5}, ["/spec/replicas"], {"replicas": 5}),
        ({"replicas": 3, "x": 1}, {"x": 2}, ["/spec/replicas"], {"x": 1}),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 9}}, ["/spec/a"], {"a": {"b": 9}}),
        ({"a": {"b": 1}}, {"a": {"b": 9, "c": 3}}, ["/spec/a/b"], {"a": {"b": 9}}),
        ({"args": ["a", "b"]}, {"args": ["a", "X", "c"]}, ["/spec/args/1"], {"args": ["a", "X"]}),
        ({"args": ["a"]}, {"args": ["a", "X"]}, ["/spec/args/1"], {"args": ["a", "X"]}),
        (
            {"args": ["a", "b", "c"]},
            {"args": ["a"]},
            ["/spec/args/1", "/spec/args/2"],
            {"args": ["a"]},
        ),
        (
            {"args": ["a", "b", "c"]},
            {"args": ["a"]},
            ["/spec/args/2", "/spec/args/1"],
            {"args": ["a"]},
        ),
        (
            {"k": {"a/b": 1, "a~b": 2}},
            {"k": {"a/b": 7, "a~b": 8}},
            ["/spec/k/a~1b", "/spec/k/a~0b"],
            {"k": {"a/b": 7, "a~b": 8}},
        ),
        (
            {"replicas": 3},
            {"replicas": 5},
            ["/spec/missing/deep", "/spec/replicas/0", "/spec/-"],
            {"replicas": 3},
        ),
        ({"replicas": 3}, {"replicas": 5}, [], {"replicas": 3}),
        (
            {"strategy": {"rollingUpdate": {"maxSurge": 1}}},
            {},
            ["/spec/strategy/rollingUpdate"],
            {},
        ),
        (
            {"strategy": {"type": "X", "rollingUpdate": {}}},
            {},
            ["/spec/strategy/rollingUpdate"],
            {"strategy": {"type": "X"}},
        ),
        ({"list": [{"a": 1}]}, {}, ["/spec/list/0/a"], {"list": [{}]}),
        ({"replicas": 3}, {"replicas": 5}, ["/spec/replicas", "/spec/replicas"], {"replicas": 5}),
        ({"x": 1}, {"x": 1, "other": {"deep": 2}}, ["/spec/other/deep"], {"x": 1}),
        ({"x": 1}, {"x": 1, "args": ["a"]}, ["/spec/args/0"], {"x": 1}),
    ],
    ids=[
        "scalar-from-live",
        "absent-in-live-removed",
        "whole-map-from-live",
        "map-key-from-live",
        "list-element-from-live",
        "list-element-appended",
        "two-removals-one-list",
        "two-removals-other-order",
        "escaped-keys",
        "unresolved-ignored",
        "no-pointers",
        "emptied-map-dropped",
        "map-with-other-keys-kept",
        "list-element-emptied-kept",
        "duplicate-pointer",
        "others-field-left-to-merge",
        "cannot-make-a-list",
    ],
)
def test_respect_ignored(desired: JSON, live: JSON, pointers: list[str], expected: JSON) -> None:
    assert respect_ignored(obj(desired), obj(live), pointers) == obj(expected)


def test_respect_ignored_declares_what_last_applied_named() -> None:
    """git dropped `replicas` but still ignores it: without live's value in desired, the
    three-way merge would delete the field as "no longer declared"."""
    before = {**obj({"replicas": 3, "x": 1})}
    live = desired_with_annotation(before)
    live["spec"]["replicas"] = 5
    desired = obj({"x": 1})
    kept = respect_ignored(desired, live, ["/spec/replicas"])
    assert kept["spec"] == {"x": 1, "replicas": 5}
    assert apply_three_way(last_applied_of(live), kept, live, None)["spec"]["replicas"] == 5
    # an explicit last_applied wins over the annotation
    assert respect_ignored(desired, live, ["/spec/replicas"], last_applied=desired) == desired


def test_respect_ignored_creates_the_maps_live_has() -> None:
    applied = obj({"strategy": {"rollingUpdate": {"maxSurge": 1}}})
    live = desired_with_annotation(applied)
    kept = respect_ignored(obj({}), live, ["/spec/strategy/rollingUpdate"])
    assert kept["spec"] == {"strategy": {"rollingUpdate": {"maxSurge": 1}}}


def test_respect_ignored_never_mutates() -> None:
    desired = obj({"replicas": 3, "args": ["a", "b", "c"], "m": {"k": 1}})
    live = obj({"replicas": 5, "args": ["a"], "m": {"k": {"deep": [1]}}})
    saved = copy.deepcopy((desired, live))
    out = respect_ignored(desired, live, ["/spec/replicas", "/spec/args/1", "/spec/m/k"])
    assert (desired, live) == saved
    out["spec"]["m"]["k"]["deep"].append(2)  # nothing shared with live either
    assert live == saved[1]
    assert respect_ignored(desired, live, []) is not desired


def test_respect_ignored_rejects_invalid_pointer() -> None:
    with pytest.raises(ValueError, match="'spec/replicas'"):
        respect_ignored(obj({}), obj({}), ["spec/replicas"])


# the promise, on a real kind: strategic merge with merge keys, retainKeys and atomic lists

WEB: JSON = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx:1.27", "args": ["--port", "80"]},
                ],
            },
        },
    },
}


def at(doc: Any, pointer: str) -> Any:
    for token in parse_pointer(pointer):
        doc = doc[int(token)] if isinstance(doc, list) else doc.get(token)
        if doc is None:
            return None
    return doc


@pytest.mark.parametrize(
    ("edit", "git", "pointer"),
    [
        ({"/spec/replicas": 7}, {}, "/spec/replicas"),
        ({"/spec/replicas": 7}, {"/spec/replicas": 4}, "/spec/replicas"),
        ({"/spec/replicas": 7}, {"/spec/replicas": None}, "/spec/replicas"),
        (
            {"/spec/template/spec/containers/0/image": "nginx:hot"},
            {"/spec/template/spec/containers/0/image": "nginx:1.28"},
            "/spec/template/spec/containers/0/image",
        ),
        (
            {"/spec/template/spec/containers/0/args/1": "8080"},
            {"/spec/template/spec/containers/0/args": ["--port", "81", "-v"]},
            "/spec/template/spec/containers/0/args/1",
        ),
        (
            {"/spec/strategy/rollingUpdate": {"maxSurge": 5, "maxUnavailable": 0}},
            {"/spec/strategy/rollingUpdate": None},
            "/spec/strategy/rollingUpdate",
        ),
        (
            {"/metadata/labels/team": "ops"},
            {"/metadata/labels": {"app": "web", "team": "dev"}},
            "/metadata/labels/team",
        ),
        ({"/spec/paused": True}, {}, "/spec/paused"),
    ],
    ids=[
        "scaled",
        "scaled-and-git-changed",
        "scaled-and-git-dropped-it",
        "image-edited",
        "atomic-list-element",
        "retain-keys-map",
        "label-git-also-sets",
        "field-git-never-named",
    ],
)
def test_apply_never_changes_an_ignored_field(
    edit: dict[str, Any], git: dict[str, Any], pointer: str
) -> None:
    live = desired_with_annotation(WEB)
    live["metadata"]["uid"] = "u-1"
    for path, value in edit.items():
        _put(live, path, value)
    desired = copy.deepcopy(WEB)
    for path, value in git.items():
        _put(desired, path, value)
    kept = respect_ignored(desired, live, [pointer])
    after = apply_three_way(last_applied_of(live), kept, live, DEPLOYMENT)
    assert at(after, pointer) == at(live, pointer)
    # and the rest of git's change still goes through
    for path, value in git.items():
        if not path.startswith(pointer) and not pointer.startswith(path):
            assert at(after, path) == value


def _put(doc: Any, pointer: str, value: Any) -> None:
    *parents, last = parse_pointer(pointer)
    for token in parents:
        doc = doc[int(token)] if isinstance(doc, list) else doc.setdefault(token, {})
    if value is None:
        doc.pop(last, None)
    elif isinstance(doc, list):
        doc[int(last)] = value
    else:
        doc[last] = value


# --------------------------------------------------------------------------------------------
# strip_ignored


def test_strip_ignored() -> None:
    live = obj({"replicas": 5, "args": ["a", "b", "c"], "m": {"a/b": 1, "keep": 2}})
    stripped = strip_ignored(
        live, ["/spec/replicas", "/spec/args/1", "/spec/args/2", "/spec/m/a~1b", "/nope/x"]
    )
    assert stripped["spec"] == {"args": ["a"], "m": {"keep": 2}}
    assert live["spec"]["replicas"] == 5  # the input is untouched
    assert strip_ignored(live, []) == live


def test_strip_ignored_rejects_invalid_pointer() -> None:
    with pytest.raises(ValueError, match="'replicas'"):
        strip_ignored(obj({}), ["replicas"])


# --------------------------------------------------------------------------------------------
# the Applier hook


def test_live_keeper() -> None:
    assert live_keeper(()) is None
    keep = live_keeper(
        parse_rules([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}])
    )
    assert keep is not None
    live = copy.deepcopy(WEB)
    live["spec"]["replicas"] = 9
    assert keep(WEB, live)["spec"]["replicas"] == 9
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "spec": {"replicas": 1},
    }
    assert keep(config, {**config, "spec": {"replicas": 2}}) == config
