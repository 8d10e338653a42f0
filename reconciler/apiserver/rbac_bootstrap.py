"""The default RBAC policy a fresh cluster has (upstream's `bootstrappolicy`), for the kinds
Recon serves.

Created at server start when missing, never overwritten: a user's edit of, say, `view` is
kept (upstream reconciles additions back in when `autoupdate` is true; Recon only adds what is
missing). The user-facing roles are aggregated as upstream: `admin`, `edit` and `view` carry an
`aggregationRule` and no rules of their own; the `system:aggregate-to-*` roles carry the rules
and the `rbac.authorization.k8s.io/aggregate-to-*` labels, and the clusterrole-aggregation
controller (`controllers/clusterrole_aggregation.py`) fills the aggregated roles. `edit` is
itself aggregated into `admin`, and `view` into `edit`, by their labels.
"""

from __future__ import annotations

from typing import Any

__all__ = ["cluster_role_bindings", "cluster_roles"]

JSONDict = dict[str, Any]

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_READ_WRITE = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
_AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def _rule(verbs: list[str], groups: list[str], resources: list[str]) -> JSONDict:
    return {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}


def _urls(verbs: list[str], urls: list[str]) -> JSONDict:
    return {"verbs": list(verbs), "nonResourceURLs": list(urls)}


def _role(
    name: str,
    rules: list[JSONDict] | None = None,
    labels: dict[str, str] | None = None,
    aggregate_from: str | None = None,
) -> JSONDict:
    role: JSONDict = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {**_BOOTSTRAP_LABELS, **(labels or {})},
            "annotations": dict(_AUTOUPDATE),
        },
        "rules": rules or [],
    }
    if aggregate_from is not None:
        role["aggregationRule"] = {
            "clusterRoleSelectors": [{"matchLabels": {f"{_AGGREGATE}{aggregate_from}": "true"}}]
        }
    return role


_VIEW_RULES = [
    _rule(
        _READ,
        [""],
        [
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "configmaps",
        ],
    ),
    _rule(
        _READ,
        [""],
        [
            "limitranges",
            "resourcequotas",
            "bindings",
            "events",
            "pods/status",
            "resourcequotas/status",
            "namespaces/status",
            "replicationcontrollers/status",
            "pods/log",
        ],
    ),
    # Reading namespaces at the namespace scope means reading *this* namespace.
    _rule(_READ, [""], ["namespaces"]),
    _rule(_READ, ["discovery.k8s.io"], ["endpointslices"]),
    _rule(
        _READ,
        ["apps"],
        [
            "controllerrevisions",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
        ],
    ),
    _rule(_READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    _rule(_READ, ["batch"], ["jobs", "cronjobs", "cronjobs/status", "jobs/status"]),
    _rule(_READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    _rule(_READ, ["networking.k8s.io"], ["networkpolicies", "ingresses", "ingresses/status"]),
]

_EDIT_RULES = [
    # Reading the resources that grant more than reading.
    _rule(
        _READ,
        [""],
        ["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"],
    ),
    _rule(["impersonate"], [""], ["serviceaccounts"]),
    _rule(_WRITE, [""], ["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
    _rule(["create"], [""], ["pods/eviction"]),
    _rule(
        _WRITE,
        [""],
        [
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/proxy",
            "persistentvolumeclaims",
            "configmaps",
            "secrets",
            "events",
        ],
    ),
    _rule(["create"], [""], ["serviceaccounts/token"]),
    _rule(
        _WRITE,
        ["apps"],
        [
            "statefulsets",
            "statefulsets/scale",
            "daemonsets",
            "deployments",
            "deployments/scale",
            "deployments/rollback",
            "replicasets",
            "replicasets/scale",
        ],
    ),
    _rule(_WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    _rule(_WRITE, ["batch"], ["jobs", "cronjobs"]),
    _rule(_WRITE, ["policy"], ["poddisruptionbudgets"]),
    _rule(_WRITE, ["networking.k8s.io"], ["networkpolicies", "ingresses"]),
    _rule(_READ_WRITE, ["coordination.k8s.io"], ["leases"]),
]

_ADMIN_RULES = [
    _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    _rule(_READ_WRITE, ["rbac.authorization.k8s.io"], ["roles", "rolebindings"]),
]

_PUBLIC_INFO = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def cluster_roles() -> list[JSONDict]:
    return [
        _role(
            "cluster-admin",
            [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])],
        ),
        _role("admin", aggregate_from="admin"),
        _role("edit", labels={f"{_AGGREGATE}admin": "true"}, aggregate_from="edit"),
        _role("view", labels={f"{_AGGREGATE}edit": "true"}, aggregate_from="view"),
        _role("system:aggregate-to-admin", _ADMIN_RULES, {f"{_AGGREGATE}admin": "true"}),
        _role("system:aggregate-to-edit", _EDIT_RULES, {f"{_AGGREGATE}edit": "true"}),
        _role("system:aggregate-to-view", _VIEW_RULES, {f"{_AGGREGATE}view": "true"}),
        _role(
            "system:discovery",
            [
                _urls(
                    ["get"],
                    [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                )
            ],
        ),
        _role(
            "system:basic-user",
            [
                _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
                _rule(
                    ["create"],
                    ["authorization.k8s.io"],
                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
            ],
        ),
        _role("system:public-info-viewer", [_urls(["get"], _PUBLIC_INFO)]),
        _role(
            "system:auth-delegator",  # what a workload checking its callers is bound to
            [
                _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            ],
        ),
    ]


def _binding(name: str, role: str, *groups: str) -> JSONDict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": dict(_BOOTSTRAP_LABELS),
            "annotations": dict(_AUTOUPDATE),
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups
        ],
    }


def cluster_role_bindings() -> list[JSONDict]:
    return [
        _binding("cluster-admin", "cluster-admin", "system:masters"),
        _binding("system:discovery", "system:discovery", "system:authenticated"),
        _binding("system:basic-user", "system:basic-user", "system:authenticated"),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            "system:authenticated",
            "system:unauthenticated",
        ),
    ]
