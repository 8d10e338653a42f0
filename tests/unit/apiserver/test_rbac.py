"""RBAC evaluation and the request-attribute mapping: pure tables, no server."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.apiserver.authz import forbidden
from reconciler.apiserver.rbac import Attributes, PolicyRule, RbacIndex, UserInfo, rule_allows
from reconciler.apiserver.request_info import resolve

JSONDict = dict[str, Any]

APP = UserInfo(
    "system:serviceaccount:default:app",
    ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"),
)
ALICE = UserInfo("alice", ("dev", "system:authenticated"))


def rule(**fields: Any) -> PolicyRule:
    return PolicyRule.parse(fields)


def res(verb: str, resource: str, group: str = "", **kw: str) -> Attributes:
    return Attributes(verb, api_group=group, resource=resource, **kw)


def url(verb: str, path: str) -> Attributes:
    return Attributes(verb, resource_request=False, path=path)


PODS_READ = rule(verbs=["get", "list"], apiGroups=[""], resources=["pods"])


@pytest.mark.parametrize(
    ("policy", "attrs", "allowed"),
    [
        (PODS_READ, res("list", "pods"), True),
        (PODS_READ, res("get", "pods", name="web"), True),
        (PODS_READ, res("delete", "pods"), False),
        (PODS_READ, res("list", "pods", "apps"), False),  # another group
        (PODS_READ, res("get", "pods", subresource="log"), False),  # pods ≠ pods/log
        (PODS_READ, res("list", "secrets"), False),
        (
            rule(verbs=["*"], apiGroups=["*"], resources=["*"]),
            res("patch", "deployments", "apps"),
            True,
        ),
        (
            rule(verbs=["get"], apiGroups=[""], resources=["pods/log"]),
            res("get", "pods", subresource="log"),
            True,
        ),
        (
            rule(verbs=["get"], apiGroups=[""], resources=["*/log"]),
            res("get", "pods", subresource="log"),
            True,
        ),
        (rule(verbs=["get"], apiGroups=[""], resources=["*/log"]), res("get", "pods"), False),
        (
            rule(verbs=["get"], apiGroups=[""], resources=["pods/*"]),
            res("get", "pods", subresource="log"),
            False,
        ),
        (
            rule(verbs=["get"], apiGroups=[""], resources=["configmaps"], resourceNames=["a"]),
            res("get", "configmaps", name="a"),
            True,
        ),
        (
            rule(verbs=["get"], apiGroups=[""], resources=["configmaps"], resourceNames=["a"]),
            res("get", "configmaps", name="b"),
            False,
        ),
        (
            rule(verbs=["list"], apiGroups=[""], resources=["configmaps"], resourceNames=["a"]),
            res("list", "configmaps"),
            False,
        ),
        (
            rule(verbs=["deletecollection"], apiGroups=["apps"], resources=["deployments"]),
            res("deletecollection", "deployments", "apps"),
            True,
        ),
        (rule(verbs=["get"], nonResourceURLs=["/healthz"]), url("get", "/healthz"), True),
        (rule(verbs=["get"], nonResourceURLs=["/healthz"]), url("get", "/healthz/ping"), False),
        (rule(verbs=["get"], nonResourceURLs=["/apis/*"]), url("get", "/apis/apps/v1"), True),
        (rule(verbs=["get"], nonResourceURLs=["*"]), url("get", "/anything"), True),
        (rule(verbs=["get"], nonResourceURLs=["/version"]), url("post", "/version"), False),
        (rule(verbs=["get"], nonResourceURLs=["*"]), res("get", "pods"), False),  # URLs only
        (PODS_READ, url("get", "/api/v1/pods"), False),
    ],
)
def test_rule_allows(policy: PolicyRule, attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(policy, attrs) is allowed


def _role(name: str, namespace: str, *rules: JSONDict) -> JSONDict:
    return {"metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def _binding(name: str, namespace: str, role_kind: str, role: str, *subjects: JSONDict) -> JSONDict:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": list(subjects),
    }


READ_PODS = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}
VIEW_CMS = {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}
URLS = {"verbs": ["get"], "nonResourceURLs": ["/metrics"]}


@pytest.fixture
def index() -> RbacIndex:
    return RbacIndex(
        roles=[_role("pod-reader", "default", READ_PODS)],
        cluster_roles=[_role("cm-viewer", "", VIEW_CMS), _role("metrics", "", URLS)],
        role_bindings=[
            _binding(
                "read", "default", "Role", "pod-reader", {"kind": "ServiceAccount", "name": "app"}
            ),
            _binding("cms", "team", "ClusterRole", "cm-viewer", {"kind": "Group", "name": "dev"}),
            _binding("dangling", "default", "Role", "missing", {"kind": "User", "name": "alice"}),
        ],
        cluster_role_bindings=[
            _binding("metrics", "", "ClusterRole", "metrics", {"kind": "User", "name": "alice"}),
        ],
    )


@pytest.mark.parametrize(
    ("user", "attrs", "allowed"),
    [
        (APP, res("list", "pods", namespace="default"), True),
        (APP, res("list", "pods", namespace="kube-system"), False),  # binding is in default
        (APP, res("list", "pods"), False),  # all namespaces: a RoleBinding does not reach
        (APP, res("delete", "pods", namespace="default", name="x"), False),
        (ALICE, res("list", "pods", namespace="default"), False),  # binding to a missing Role
        (ALICE, res("get", "configmaps", namespace="team", name="a"), True),  # by group
        (ALICE, res("get", "configmaps", namespace="default", name="a"), False),
        (ALICE, url("get", "/metrics"), True),
        (APP, url("get", "/metrics"), False),
        (
            UserInfo("system:serviceaccount:other:app"),
            res("list", "pods", namespace="default"),
            False,
        ),
    ],
)
def test_bindings_reach_their_subjects_in_their_scope(
    index: RbacIndex, user: UserInfo, attrs: Attributes, allowed: bool
) -> None:
    assert index.authorize(user, attrs).allowed is allowed


def test_an_allowed_decision_names_binding_role_and_subject(index: RbacIndex) -> None:
    decision = index.authorize(APP, res("get", "pods", namespace="default", name="x"))
    assert decision.reason == (
        'RBAC: allowed by RoleBinding "read/default" of Role "pod-reader" to '
        'ServiceAccount "app/default"'
    )


def test_rules_for_lists_each_applicable_rule_once(index: RbacIndex) -> None:
    assert index.rules_for(ALICE, "team") == [PolicyRule.parse(URLS), PolicyRule.parse(VIEW_CMS)]
    assert index.rules_for(APP, "default") == [PolicyRule.parse(READ_PODS)]
    assert index.rules_for(APP, "team") == []


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        (
            "GET",
            "/api/v1/namespaces/default/pods",
            {},
            res("list", "pods", api_version="v1", namespace="default"),
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods",
            {"watch": "true"},
            res("watch", "pods", api_version="v1", namespace="default"),
        ),
        (
            "GET",
            "/api/v1/watch/namespaces/default/pods",
            {},
            res("watch", "pods", api_version="v1", namespace="default"),
        ),
        (
            "GET",
            "/api/v1/pods",
            {"fieldSelector": "metadata.name=a"},
            res("list", "pods", api_version="v1", name="a"),
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods/web",
            {},
            res("get", "pods", api_version="v1", namespace="default", name="web"),
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods",
            {},
            res("create", "pods", api_version="v1", namespace="default"),
        ),
        (
            "PUT",
            "/apis/apps/v1/namespaces/x/deployments/web/scale",
            {},
            res(
                "update",
                "deployments",
                "apps",
                api_version="v1",
                namespace="x",
                name="web",
                subresource="scale",
            ),
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/x/deployments/web",
            {},
            res("patch", "deployments", "apps", api_version="v1", namespace="x", name="web"),
        ),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/x/deployments",
            {},
            res("deletecollection", "deployments", "apps", api_version="v1", namespace="x"),
        ),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/x/deployments/web",
            {},
            res("delete", "deployments", "apps", api_version="v1", namespace="x", name="web"),
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods/web/eviction",
            {},
            res(
                "create",
                "pods",
                api_version="v1",
                namespace="default",
                name="web",
                subresource="eviction",
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces/x",
            {},
            res("get", "namespaces", api_version="v1", namespace="x", name="x"),
        ),
        (
            "PUT",
            "/api/v1/namespaces/x/finalize",
            {},
            res(
                "update",
                "namespaces",
                api_version="v1",
                namespace="x",
                name="x",
                subresource="finalize",
            ),
        ),
        ("GET", "/api/v1/namespaces", {}, res("list", "namespaces", api_version="v1")),
        (
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
            {},
            res("get", "clusterroles", "rbac.authorization.k8s.io", api_version="v1", name="view"),
        ),
    ],
)
def test_resource_requests_map_to_upstreams_attributes(
    method: str, path: str, query: dict[str, str], expected: Attributes
) -> None:
    got = resolve(method, path, query)
    assert got == Attributes(**{**expected.__dict__, "path": path})


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("GET", "/version", "get"),
        ("GET", "/healthz", "get"),
        ("GET", "/api", "get"),
        ("GET", "/api/v1", "get"),
        ("GET", "/apis", "get"),
        ("GET", "/apis/apps", "get"),
        ("GET", "/apis/apps/v1", "get"),
        ("GET", "/openapi/v3/apis/apps/v1", "get"),
        ("POST", "/logs", "post"),
    ],
)
def test_other_urls_are_non_resource_requests(method: str, path: str, verb: str) -> None:
    assert resolve(method, path, {}) == url(verb, path)


@pytest.mark.parametrize(
    ("attrs", "message", "details"),
    [
        (
            res("list", "pods", namespace="default"),
            'pods is forbidden: User "system:serviceaccount:default:app" cannot list resource '
            '"pods" in API group "" in the namespace "default"',
            {"kind": "pods"},
        ),
        (
            res("get", "deployments", "apps", namespace="x", name="web", subresource="scale"),
            'deployments.apps "web" is forbidden: User "system:serviceaccount:default:app" '
            'cannot get resource "deployments/scale" in API group "apps" in the namespace "x"',
            {"kind": "deployments", "group": "apps", "name": "web"},
        ),
        (
            res("list", "nodes"),
            'nodes is forbidden: User "system:serviceaccount:default:app" cannot list resource '
            '"nodes" in API group "" at the cluster scope',
            {"kind": "nodes"},
        ),
        (
            url("get", "/metrics"),
            'forbidden: User "system:serviceaccount:default:app" cannot get path "/metrics"',
            None,
        ),
    ],
)
def test_forbidden_speaks_upstreams_words(
    attrs: Attributes, message: str, details: JSONDict | None
) -> None:
    status = forbidden(APP, attrs).status()
    assert status["code"] == 403 and status["reason"] == "Forbidden"
    assert status["message"] == message
    assert status.get("details") == details
