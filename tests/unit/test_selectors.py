"""Label and field selectors behave as Kubernetes' `labels` and `fields` packages do."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.selectors import (
    FieldRequirement,
    LabelSelector,
    Operator,
    SelectorError,
    field_value,
    label_selector_from_spec,
    parse_field_selector,
    parse_label_selector,
    selector_to_string,
    supported_field,
)

# --- label selectors: parsing to the canonical string ----------------------------------------

CANONICAL = [
    ("", ""),
    ("   ", ""),
    ("a=b", "a=b"),
    ("a==b", "a==b"),
    ("a!=b", "a!=b"),
    ("a", "a"),
    ("!a", "!a"),
    ("a in (x,y)", "a in (x,y)"),
    ("a in (y, x)", "a in (x,y)"),
    ("a notin (x,y)", "a notin (x,y)"),
    ("a in (x,x)", "a in (x)"),
    (" a = b , c ", "a=b,c"),
    ("b=1,a=2", "a=2,b=1"),
    ("\ta\t!=\tb", "a!=b"),
    ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
    ("example.com/tier in (db)", "example.com/tier in (db)"),
    ("a=", "a="),
    ("a=,b", "a=,b"),
    ("x in ()", "x in ()"),
    ("x in (a,,b)", "x in (,a,b)"),
    ("x in (a,)", "x in (,a)"),
    ("x in (in,notin)", "x in (in,notin)"),
    ("in=notin", "in=notin"),
    ("a>3", "a>3"),
    ("a<3", "a<3"),
    ("z,!y,x=1", "x=1,!y,z"),
    (
        "env in (prod,dev),tier notin (fe),!canary,app",
        "app,!canary,env in (dev,prod),tier notin (fe)",
    ),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_parse_label_selector_canonical_string(text: str, canonical: str) -> None:
    selector = parse_label_selector(text)
    assert selector_to_string(selector) == canonical
    assert str(selector) == canonical
    # The canonical form parses back to the same selector.
    assert parse_label_selector(canonical) == selector


def test_parsed_requirements_are_structured() -> None:
    selector = parse_label_selector("tier notin (b,a),app=web")
    assert [(r.key, r.operator, r.values) for r in selector.requirements] == [
        ("app", Operator.EQUALS, ("web",)),
        ("tier", Operator.NOT_IN, ("a", "b")),
    ]


# --- label selectors: syntax errors name the offending part ----------------------------------

ERRORS = [
    ("a b", "'b'"),
    ("a=b=c", "'='"),
    ("a=b c", "'c'"),
    ("a,", "identifier after ','"),
    (",a", "','"),
    ("a,,b", "','"),
    ("!a=b", "'='"),
    ("!", "end of string"),
    ("=b", "'='"),
    ("a in x", "'x'"),
    ("a in (x", "end of string"),
    ("a in (x y)", "'y'"),
    ("a in (x))", "')'"),
    ("a notin", "end of string"),
    ("a (x)", "'('"),
    ("-a=b", "'-a'"),
    ("a-=b", "'a-'"),
    ("a/b/c=d", "'a/b/c'"),
    ("Example.com/a=b", "'Example.com/a'"),
    ("/a=b", "prefix"),
    ("a/=b", "name part"),
    ("a" * 64 + "=b", "63"),
    ("a=" + "v" * 64, "63"),
    ("a=-bad", "'-bad'"),
    ("a in (ok,bad-)", "'bad-'"),
    ("a>x", "'x'"),
    ("a>", "integer"),
]


@pytest.mark.parametrize(("text", "mentions"), ERRORS)
def test_parse_label_selector_errors(text: str, mentions: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert mentions in str(info.value)
    assert isinstance(info.value, ValueError)


# --- label selectors: matching ---------------------------------------------------------------

WEB = {"app": "web", "tier": "frontend", "app.kubernetes.io/name": "shop", "n": "5"}

MATCHES = [
    ("", {}, True),
    ("", WEB, True),
    ("app=web", WEB, True),
    ("app==web", WEB, True),
    ("app=db", WEB, False),
    ("app=web", {}, False),
    ("app!=db", WEB, True),
    ("app!=web", WEB, False),
    ("app!=web", {}, True),  # != matches objects without the label
    ("tier in (frontend,backend)", WEB, True),
    ("tier in (backend)", WEB, False),
    ("tier in (frontend)", {}, False),
    ("tier notin (backend)", WEB, True),
    ("tier notin (frontend)", WEB, False),
    ("tier notin (frontend)", {}, True),  # notin matches objects without the label
    ("app", WEB, True),
    ("app", {}, False),
    ("!app", WEB, False),
    ("!canary", WEB, True),
    ("app.kubernetes.io/name=shop", WEB, True),
    ("app=web,tier=frontend", WEB, True),
    ("app=web,tier=backend", WEB, False),
    ("a=", {"a": ""}, True),
    ("a=", {}, False),
    ("x in ()", {"x": ""}, True),
    ("n>4", WEB, True),
    ("n>5", WEB, False),
    ("n<6", WEB, True),
    ("app>1", WEB, False),  # not an integer: no match
    ("missing<1", WEB, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_empty_selector_is_empty_and_matches_none_labels() -> None:
    selector = parse_label_selector("")
    assert selector.empty
    assert selector.matches(None)
    assert not parse_label_selector("a").empty


# --- label selectors: the object form --------------------------------------------------------

SPECS: list[tuple[dict[str, Any], str, dict[str, str], bool]] = [
    ({}, "", {}, True),
    ({"matchLabels": {}, "matchExpressions": []}, "", {"a": "b"}, True),
    ({"matchLabels": {"app": "web"}}, "app=web", WEB, True),
    ({"matchLabels": {"tier": "frontend", "app": "web"}}, "app=web,tier=frontend", WEB, True),
    (
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "frontend"]}]},
        "tier in (fe,frontend)",
        WEB,
        True,
    ),
    (
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["frontend"]}]},
        "tier notin (frontend)",
        WEB,
        False,
    ),
    ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, "app", WEB, True),
    (
        {"matchExpressions": [{"key": "canary", "operator": "DoesNotExist", "values": []}]},
        "!canary",
        WEB,
        True,
    ),
    (
        {
            "matchLabels": {"z": "1"},
            "matchExpressions": [{"key": "a", "operator": "Exists"}],
        },
        "a,z=1",
        {"a": "x", "z": "1"},
        True,
    ),
]


@pytest.mark.parametrize(("spec", "canonical", "labels", "expected"), SPECS)
def test_label_selector_from_spec(
    spec: dict[str, Any], canonical: str, labels: dict[str, str], expected: bool
) -> None:
    selector = label_selector_from_spec(spec)
    assert selector_to_string(selector) == canonical
    assert selector.matches(labels) is expected


def test_absent_selector_matches_nothing() -> None:
    selector = label_selector_from_spec(None)
    assert selector == LabelSelector(matches_nothing=True)
    assert not selector.matches({})
    assert not selector.matches(WEB)
    assert not selector.empty
    assert selector_to_string(selector) == ""


SPEC_ERRORS: list[tuple[Any, str]] = [
    ({"matchExpressions": [{"key": "a", "operator": "Foo", "values": ["x"]}]}, "'Foo'"),
    ({"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}, "'in'"),
    ({"matchExpressions": [{"key": "a"}]}, "None"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "empty"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]}, "list"),
    ({"matchExpressions": [{"key": "A B", "operator": "Exists"}]}, "'A B'"),
    ({"matchLabels": {"app": "we b"}}, "'we b'"),
    ({"matchLabels": {"app": 3}}, "3"),
    ({"matchLabels": ["app"]}, "matchLabels"),
    (["app"], "object"),
]


@pytest.mark.parametrize(("spec", "mentions"), SPEC_ERRORS)
def test_label_selector_from_spec_errors(spec: Any, mentions: str) -> None:
    with pytest.raises(SelectorError) as info:
        label_selector_from_spec(spec)
    assert mentions in str(info.value)


# --- field selectors -------------------------------------------------------------------------

FIELD_PARSES = [
    ("", []),
    ("metadata.name=web", [("metadata.name", "=", "web")]),
    ("metadata.name==web", [("metadata.name", "=", "web")]),
    ("status.phase!=Running", [("status.phase", "!=", "Running")]),
    (
        "spec.nodeName=n1,metadata.namespace=default",
        [("metadata.namespace", "=", "default"), ("spec.nodeName", "=", "n1")],
    ),
    ("a=", [("a", "=", "")]),
    ("a=b,", [("a", "=", "b")]),
    (r"a=x\,y", [("a", "=", "x,y")]),
    (r"a=x\=y", [("a", "=", "x=y")]),
    (r"a=x\\y", [("a", "=", "x\\y")]),
    (r"a!=x\,y,b=1", [("a", "!=", "x,y"), ("b", "=", "1")]),
    (" a=b", [(" a", "=", "b")]),  # field names are not trimmed, as in Kubernetes
]


@pytest.mark.parametrize(("text", "expected"), FIELD_PARSES)
def test_parse_field_selector(text: str, expected: list[tuple[str, str, str]]) -> None:
    selector = parse_field_selector(text)
    assert selector.requirements == tuple(FieldRequirement(*r) for r in expected)
    assert selector.fields == frozenset(r[0] for r in expected)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("b=2,a==1", "a=1,b=2"), (r"a=x\,y\=z\\", r"a=x\,y\=z\\"), ("a!=b", "a!=b"), ("", "")],
)
def test_field_selector_string(text: str, canonical: str) -> None:
    assert str(parse_field_selector(text)) == canonical


FIELD_ERRORS = [
    ("abc", "'abc'"),
    ("a=b,abc", "'abc'"),
    (r"a=x\y", "\\y"),
    ("a=x\\", "end"),
    ("a=b=c", "'='"),
]


@pytest.mark.parametrize(("text", "mentions"), FIELD_ERRORS)
def test_parse_field_selector_errors(text: str, mentions: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_field_selector(text)
    assert mentions in str(info.value)


POD: dict[str, Any] = {
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-a", "restartPolicy": "Always", "serviceAccountName": "default"},
    "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]},
}
EVENT: dict[str, Any] = {
    "kind": "Event",
    "metadata": {"name": "web-1.17a", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u-1"},
    "reason": "Started",
    "type": "Normal",
    "reportingComponent": "kubelet",
}

FIELD_MATCHES: list[tuple[str, dict[str, Any], bool]] = [
    ("", POD, True),
    ("metadata.name=web-1", POD, True),
    ("metadata.name=web-2", POD, False),
    ("metadata.name!=web-2", POD, True),
    ("metadata.namespace=default,spec.nodeName=node-a", POD, True),
    ("spec.nodeName=", POD, False),
    ("status.phase=Running", POD, True),
    ("status.phase!=Running", POD, False),
    ("spec.schedulerName=", POD, True),  # missing reads as ""
    ("spec.schedulerName!=default-scheduler", POD, True),
    ("status.nominatedNodeName=", POD, True),
    ("status.podIP=10.0.0.5", POD, True),
    ("spec.host=node-a", POD, True),
    ("spec.hostNetwork=false", POD, True),
    ("spec.restartPolicy=Always", POD, True),
    ("spec.serviceAccountName=default", POD, True),
    ("involvedObject.name=web-1,involvedObject.kind=Pod", EVENT, True),
    ("involvedObject.uid=u-1", EVENT, True),
    ("involvedObject.namespace=kube-system", EVENT, False),
    ("reason=Started,type=Normal", EVENT, True),
    ("type=Warning", EVENT, False),
    ("source=kubelet", EVENT, True),
    ("reportingComponent=kubelet", EVENT, True),
]


@pytest.mark.parametrize(("text", "obj", "expected"), FIELD_MATCHES)
def test_field_selector_matches(text: str, obj: dict[str, Any], expected: bool) -> None:
    assert parse_field_selector(text).matches(obj) is expected


FIELD_VALUES: list[tuple[dict[str, Any], str, str]] = [
    (POD, "metadata.name", "web-1"),
    (POD, "status.podIP", "10.0.0.5"),
    (
        {"kind": "Pod", "status": {"podIP": "10.0.0.9", "podIPs": [{"ip": "x"}]}},
        "status.podIP",
        "10.0.0.9",
    ),
    ({"kind": "Pod"}, "status.podIP", ""),
    (POD, "status.podIPs", ""),
    ({"kind": "Pod", "spec": {"hostNetwork": True}}, "spec.hostNetwork", "true"),
    ({"kind": "Node", "spec": {}}, "spec.unschedulable", "false"),
    ({"kind": "Node", "spec": {"unschedulable": True}}, "spec.unschedulable", "true"),
    ({"kind": "Namespace", "status": {"phase": "Active"}}, "status.phase", "Active"),
    ({"kind": "Secret", "type": "Opaque"}, "type", "Opaque"),
    ({"kind": "ReplicaSet", "status": {}}, "status.replicas", "0"),
    ({"kind": "ReplicaSet", "status": {"replicas": 3}}, "status.replicas", "3"),
    ({"kind": "Job", "status": {"succeeded": 2}}, "status.successful", "2"),
    ({"kind": "Job"}, "status.successful", "0"),
    ({"kind": "Event", "source": {"component": "sched"}}, "source", "sched"),
    ({"kind": "Event", "source": {}}, "source", ""),
    ({"kind": "Thing", "spec": {"nested": {"x": 1}}}, "spec.nested", ""),
    ({"kind": "Thing", "spec": {"flag": False}}, "spec.flag", "false"),
    ({"kind": "Thing", "spec": "scalar"}, "spec.x", ""),
]


@pytest.mark.parametrize(("obj", "field", "expected"), FIELD_VALUES)
def test_field_value(obj: dict[str, Any], field: str, expected: str) -> None:
    assert field_value(obj, field) == expected


SUPPORTED = [
    ("Pod", "metadata.name", True),
    ("Pod", "metadata.namespace", True),
    ("Pod", "spec.nodeName", True),
    ("Pod", "spec.host", True),
    ("Pod", "spec.restartPolicy", True),
    ("Pod", "spec.schedulerName", True),
    ("Pod", "spec.serviceAccountName", True),
    ("Pod", "spec.hostNetwork", True),
    ("Pod", "status.phase", True),
    ("Pod", "status.podIP", True),
    ("Pod", "status.nominatedNodeName", True),
    ("Pod", "metadata.labels", False),
    ("Pod", "spec.containers", False),
    ("Event", "involvedObject.name", True),
    ("Event", "involvedObject.kind", True),
    ("Event", "involvedObject.uid", True),
    ("Event", "involvedObject.namespace", True),
    ("Event", "involvedObject.fieldPath", True),
    ("Event", "reason", True),
    ("Event", "type", True),
    ("Event", "source", True),
    ("Event", "reportingComponent", True),
    ("Event", "message", False),
    ("Secret", "type", True),
    ("Secret", "metadata.namespace", True),
    ("Secret", "data", False),
    ("Namespace", "status.phase", True),
    ("Namespace", "metadata.name", True),
    ("Namespace", "metadata.namespace", False),  # Kubernetes rejects it for Namespaces
    ("Node", "spec.unschedulable", True),
    ("Node", "metadata.namespace", False),  # ... and for Nodes
    ("ReplicaSet", "status.replicas", True),
    ("ReplicationController", "status.replicas", True),
    ("Job", "status.successful", True),
    ("Job", "status.succeeded", False),
    ("Service", "spec.type", True),
    ("ConfigMap", "metadata.name", True),
    ("ConfigMap", "metadata.namespace", True),
    ("ConfigMap", "data.key", False),
    ("Deployment", "status.replicas", False),
    ("Widget", "metadata.name", True),
    ("Widget", "spec.size", False),
]


@pytest.mark.parametrize(("kind", "field", "expected"), SUPPORTED)
def test_supported_field(kind: str, field: str, expected: bool) -> None:
    assert supported_field(kind, field) is expected
