"""The pure decisions of the ServiceAccount, token-Secret and aggregation controllers."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.controllers.clusterrole_aggregation import aggregate
from reconciler.controllers.sa_token_secrets import Delete, Fill, plan
from reconciler.controllers.serviceaccounts import needs_default_account

JSONDict = dict[str, Any]

NS = {"metadata": {"name": "team"}, "status": {"phase": "Active"}}
ACCOUNT = {"metadata": {"name": "default", "namespace": "team", "uid": "u1"}}


@pytest.mark.parametrize(
    ("namespace", "account", "needed"),
    [
        (NS, None, True),
        (NS, ACCOUNT, False),
        (None, None, False),
        ({**NS, "status": {"phase": "Terminating"}}, None, False),
        ({"metadata": {"name": "team", "deletionTimestamp": "2026-01-01T00:00:00Z"}}, None, False),
    ],
)
def test_default_account(
    namespace: JSONDict | None, account: JSONDict | None, needed: bool
) -> None:
    assert needs_default_account(namespace, account) is needed


def secret(
    annotations: JSONDict | None = None, data: JSONDict | None = None, **more: Any
) -> JSONDict:
    base = {"kubernetes.io/service-account.name": "default"}
    return {
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": "s",
            "namespace": "team",
            "annotations": {**base, **(annotations or {})},
        },
        "data": data or {},
        **more,
    }


FULL = {"token": "dA==", "ca.crt": "Yw==", "namespace": "dGVhbQ=="}


@pytest.mark.parametrize(
    ("obj", "account", "decision"),
    [
        (secret(), ACCOUNT, Fill("u1")),
        (secret({"kubernetes.io/service-account.uid": "u1"}, FULL), ACCOUNT, None),
        (
            secret({"kubernetes.io/service-account.uid": "u1"}, {"token": "dA=="}),
            ACCOUNT,
            Fill("u1"),
        ),
        (secret(), None, Delete("ServiceAccount 'default' does not exist")),
        (
            secret({"kubernetes.io/service-account.uid": "old"}, FULL),
            ACCOUNT,
            Delete("ServiceAccount 'default' has uid u1, not old"),
        ),
        ({**secret(), "type": "Opaque"}, ACCOUNT, None),
        (secret({"kubernetes.io/service-account.name": ""}), ACCOUNT, None),
        (None, ACCOUNT, None),
    ],
)
def test_token_secret_plan(
    obj: JSONDict | None, account: JSONDict | None, decision: object
) -> None:
    assert plan(obj, account) == decision


def role(
    name: str, labels: dict[str, str], *rules: JSONDict, selectors: list[JSONDict] | None = None
) -> JSONDict:
    out: JSONDict = {"metadata": {"name": name, "labels": labels}, "rules": list(rules)}
    if selectors is not None:
        out["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return out


R1 = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
R2 = {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}
R3 = {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]}


def test_aggregate_collects_matching_roles_by_name_without_duplicates() -> None:
    to_view = {"x/aggregate-to-view": "true"}
    view = role("view", to_view, R3, selectors=[{"matchLabels": to_view}])  # itself: skipped
    b = role("b", to_view, R2, R1)
    a = role("a", to_view, R1)
    other = role("c", {"x": "y"}, R3)
    assert aggregate(view, [view, b, a, other]) == [R1, R2]


def test_aggregate_follows_selectors_in_order_and_ignores_bad_ones() -> None:
    agg = role(
        "agg",
        {},
        selectors=[
            {"matchLabels": {"k": "2"}},
            {"matchExpressions": [{"key": "k", "operator": "Bogus"}]},
            {"matchExpressions": [{"key": "k", "operator": "In", "values": ["1"]}]},
        ],
    )
    assert aggregate(agg, [role("one", {"k": "1"}, R1), role("two", {"k": "2"}, R3)]) == [R3, R1]
    assert aggregate(role("plain", {}, R1), []) is None
