"""Authentication, impersonation, RBAC, ServiceAccount tokens and the review APIs, over
HTTPS against a real ApiServer (with the RBAC controllers where a test needs them)."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.apiserver.escalation import uncovered
from reconciler.apiserver.rbac import PolicyRule
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import ManualClock
from reconciler.controllers.base import ControllerManager
from reconciler.controllers.clusterrole_aggregation import ClusterRoleAggregationController
from reconciler.controllers.sa_token_secrets import TokenSecretsController
from reconciler.controllers.serviceaccounts import ServiceAccountsController

JSONDict = dict[str, Any]
RBAC = "rbac.authorization.k8s.io/v1"
PODS = "/api/v1/namespaces/default/pods"


@dataclass
class Api:
    server: ApiServer
    client: InProcessClient
    http: aiohttp.ClientSession
    clock: ManualClock

    @property
    def admin(self) -> str:
        assert self.server.credentials is not None
        return self.server.credentials.token

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: object = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = {"Authorization": f"Bearer {token or self.admin}", **(headers or {})}
        data = json.dumps(body) if body is not None else None
        async with self.http.request(method, path, data=data, headers=sent) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def account(self, name: str = "app", namespace: str = "default") -> JSONDict:
        return await self.client.create(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            }
        )

    async def token(self, name: str = "app", **spec: Any) -> str:
        code, body = await self.call(
            "POST",
            f"/api/v1/namespaces/default/serviceaccounts/{name}/token",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        assert code == 201, body
        return str(body["status"]["token"])

    async def grant_pod_reading(self, verbs: tuple[str, ...] = ("get", "list")) -> None:
        await self.client.create(
            {
                "apiVersion": RBAC,
                "kind": "Role",
                "metadata": {"name": "pod-reader", "namespace": "default"},
                "rules": [{"verbs": list(verbs), "apiGroups": [""], "resources": ["pods"]}],
            }
        )
        await self.client.create(
            {
                "apiVersion": RBAC,
                "kind": "RoleBinding",
                "metadata": {"name": "read", "namespace": "default"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "pod-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}],
            }
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    clock = ManualClock()
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0), clock)
    await server.start()
    async with aiohttp.ClientSession(
        base_url=f"https://127.0.0.1:{server.port}",
        headers={"Content-Type": "application/json"},
        connector=aiohttp.TCPConnector(ssl=False),
    ) as http:
        yield Api(server, InProcessClient(server.service), http, clock)
    await server.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- tokens ---------------------------------------------------------------------------------


async def test_a_service_account_token_authenticates_as_the_account(api: Api) -> None:
    account = await api.account()
    await api.grant_pod_reading()
    token = await api.token()
    assert (await api.call("GET", PODS, token))[0] == 200
    code, review = await api.call(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        token,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert code == 201
    assert review["status"]["userInfo"] == {
        "username": "system:serviceaccount:default:app",
        "uid": account["metadata"]["uid"],
        "groups": [
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated",
        ],
    }


async def test_the_token_carries_upstreams_claims(api: Api) -> None:
    account = await api.account()
    code, body = await api.call(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/app/token",
        body={
            "spec": {
                "audiences": ["https://kubernetes.default.svc.cluster.local", "vault"],
                "expirationSeconds": 900,
            }
        },
    )
    assert code == 201 and body["kind"] == "TokenRequest"
    assert body["status"]["expirationTimestamp"] == "2026-01-01T00:15:00Z"
    header, payload, _ = body["status"]["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert json.loads(base64.urlsafe_b64decode(header + "==="))["alg"] == "ES256"
    assert claims["sub"] == "system:serviceaccount:default:app"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local", "vault"]
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "app", "uid": account["metadata"]["uid"]},
    }


async def test_the_signing_key_is_private_and_kept(api: Api, tmp_path: Path) -> None:
    key = tmp_path / "pki" / "sa.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


async def test_a_token_expires(api: Api) -> None:
    await api.account()
    await api.grant_pod_reading()
    token = await api.token(expirationSeconds=600)
    api.clock.advance(599)
    assert (await api.call("GET", PODS, token))[0] == 200
    api.clock.advance(1)
    assert (await api.call("GET", PODS, token))[0] == 401


async def test_a_token_dies_with_its_account_even_when_one_of_that_name_comes_back(
    api: Api,
) -> None:
    await api.account()
    await api.grant_pod_reading()
    token = await api.token()
    await api.client.delete("v1", "ServiceAccount", "app", "default")
    assert (await api.call("GET", PODS, token))[0] == 401
    await api.account()  # same name, new uid
    assert (await api.call("GET", PODS, token))[0] == 401


async def test_a_bound_token_dies_with_its_pod(api: Api) -> None:
    await api.account()
    await api.grant_pod_reading()
    pod = await api.client.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
    )
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": pod["metadata"]["uid"]}
    token = await api.token(boundObjectRef=ref)
    assert (await api.call("GET", PODS, token))[0] == 200
    await api.client.delete("v1", "Pod", "web", "default")
    assert (await api.call("GET", PODS, token))[0] == 401


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        (
            {"expirationSeconds": 10},
            422,
            "spec.expirationSeconds: Invalid value: 10: "
            "may not specify a duration less than 10 minutes",
        ),
        ({"expirationSeconds": "1h"}, 422, "spec.expirationSeconds: must be an integer"),
        ({"audiences": [""]}, 422, "spec.audiences: must be a list of non-empty strings"),
        ({"boundObjectRef": {"kind": "Pod", "name": "nope"}}, 404, 'pods "nope" not found'),
        (
            {"boundObjectRef": {"kind": "Deployment", "name": "x"}},
            400,
            "cannot bind token for object of kind Deployment",
        ),
    ],
)
async def test_bad_token_requests_name_the_field(
    api: Api, spec: JSONDict, code: int, message: str
) -> None:
    await api.account()
    got, body = await api.call(
        "POST", "/api/v1/namespaces/default/serviceaccounts/app/token", body={"spec": spec}
    )
    assert got == code and message in body["message"]


async def test_a_token_for_a_missing_account_is_a_404(api: Api) -> None:
    code, body = await api.call(
        "POST", "/api/v1/namespaces/default/serviceaccounts/ghost/token", body={"spec": {}}
    )
    assert code == 404 and body["message"] == 'serviceaccounts "ghost" not found'


async def test_garbage_and_foreign_tokens_are_unauthorized(api: Api, tmp_path: Path) -> None:
    await api.account()
    token = await api.token()
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"
    for bad in ("nope", tampered, await api.token(audiences=["vault"])):
        assert (await api.call("GET", PODS, bad))[0] == 401
    assert (await api.call("GET", "/healthz", "nope"))[0] == 200  # public


# -- authorization --------------------------------------------------------------------------


async def test_rbac_allows_what_is_bound_and_forbids_the_rest_in_upstreams_words(api: Api) -> None:
    await api.account()
    token = await api.token()
    code, body = await api.call("GET", PODS, token)
    assert code == 403
    assert body["message"] == (
        'pods is forbidden: User "system:serviceaccount:default:app" cannot list resource '
        '"pods" in API group "" in the namespace "default"'
    )
    assert body["reason"] == "Forbidden" and body["details"] == {"kind": "pods"}
    await api.grant_pod_reading()  # the index is rebuilt on the RBAC change
    assert (await api.call("GET", PODS, token))[0] == 200
    code, body = await api.call("DELETE", f"{PODS}/web", token)
    assert code == 403 and body["message"].startswith('pods "web" is forbidden: User ')
    code, body = await api.call("GET", "/api/v1/namespaces/default/secrets", token)
    assert code == 403
    # Discovery stays readable (system:discovery), as kubectl needs it.
    assert (await api.call("GET", "/apis/apps/v1", token))[0] == 200
    await api.client.delete(RBAC, "RoleBinding", "read", "default")
    assert (await api.call("GET", PODS, token))[0] == 403


async def test_impersonation_is_for_who_may_impersonate(api: Api) -> None:
    await api.account()
    await api.grant_pod_reading()
    as_app = {"Impersonate-User": "system:serviceaccount:default:app"}
    assert (await api.call("GET", PODS, headers=as_app))[0] == 200  # the admin may
    code, body = await api.call("GET", "/api/v1/namespaces/default/secrets", headers=as_app)
    assert code == 403 and 'User "system:serviceaccount:default:app"' in body["message"]
    token = await api.token()
    code, body = await api.call("GET", PODS, token, headers={"Impersonate-User": "alice"})
    assert code == 403
    assert body["message"] == (
        'users "alice" is forbidden: User "system:serviceaccount:default:app" cannot '
        'impersonate resource "users" in API group "" at the cluster scope'
    )
    code, body = await api.call("GET", PODS, headers={"Impersonate-Group": "dev"})
    assert code == 400 and "without impersonating a user" in body["message"]


async def test_impersonated_groups_are_what_the_headers_say(api: Api) -> None:
    code, body = await api.call(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={
            "Impersonate-User": "alice",
            "Impersonate-Group": "dev",
            "Impersonate-Extra-Scopes": "a",
        },
    )
    assert code == 201
    assert body["status"]["userInfo"] == {
        "username": "alice",
        "groups": ["dev", "system:authenticated"],
        "extra": {"scopes": ["a"]},
    }


async def test_the_admin_is_in_system_masters(api: Api) -> None:
    code, body = await api.call(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"kind": "SelfSubjectReview"},
    )
    assert code == 201
    assert body["status"]["userInfo"] == {
        "username": "recon-admin",
        "groups": ["system:masters", "system:authenticated"],
    }


# -- reviews --------------------------------------------------------------------------------


def access_review(verb: str, resource: str, namespace: str = "default", **more: Any) -> JSONDict:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace},
            **more,
        },
    }


async def test_self_subject_access_review_answers_for_the_impersonated_user(api: Api) -> None:
    await api.account()
    await api.grant_pod_reading()
    as_app = {"Impersonate-User": "system:serviceaccount:default:app"}
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    code, body = await api.call("POST", path, body=access_review("list", "pods"), headers=as_app)
    assert code == 201 and body["status"]["allowed"] is True
    assert body["status"]["reason"].startswith('RBAC: allowed by RoleBinding "read/default"')
    code, body = await api.call("POST", path, body=access_review("delete", "pods"), headers=as_app)
    assert code == 201 and body["status"] == {"allowed": False}
    assert (await api.call("GET", path))[0] == 405


async def test_subject_access_reviews_ask_about_someone_else(api: Api) -> None:
    await api.account()
    await api.grant_pod_reading()
    spec = {
        "user": "system:serviceaccount:default:app",
        "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"},
    }
    code, body = await api.call(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body={"spec": spec}
    )
    assert code == 201 and body["status"]["allowed"] is True
    code, body = await api.call(
        "POST",
        "/apis/authorization.k8s.io/v1/namespaces/kube-system/localsubjectaccessreviews",
        body={
            "spec": {
                **spec,
                "resourceAttributes": {**spec["resourceAttributes"], "namespace": "kube-system"},
            }
        },
    )
    assert code == 201 and body["status"]["allowed"] is False
    code, body = await api.call(
        "POST",
        "/apis/authorization.k8s.io/v1/namespaces/kube-system/localsubjectaccessreviews",
        body={"spec": spec},
    )
    assert code == 400 and "spec.resourceAttributes.namespace must match" in body["message"]
    code, body = await api.call(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body={"spec": {"resourceAttributes": {}}},
    )
    assert code == 422 and "spec.user: at least one of user or group" in body["message"]
    code, body = await api.call(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body={"spec": {"user": "x"}}
    )
    assert code == 422 and "spec.resourceAttributes: exactly one of" in body["message"]


async def test_a_service_account_may_not_ask_about_others_by_default(api: Api) -> None:
    await api.account()
    token = await api.token()
    code, body = await api.call(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        token,
        {"spec": {"user": "x", "nonResourceAttributes": {"verb": "get", "path": "/"}}},
    )
    assert (
        code == 403 and "subjectaccessreviews.authorization.k8s.io is forbidden" in body["message"]
    )


async def test_self_subject_rules_review_lists_the_rules(api: Api) -> None:
    await api.account()
    await api.grant_pod_reading()
    token = await api.token()
    code, body = await api.call(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        token,
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": "default"},
        },
    )
    assert code == 201 and body["status"]["incomplete"] is False
    rules = body["status"]["resourceRules"]
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]} in rules
    assert {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    } in rules
    urls = body["status"]["nonResourceRules"]
    assert any("/version" in r["nonResourceURLs"] for r in urls)


async def test_discovery_serves_reviews_and_the_token_subresource_create_only(api: Api) -> None:
    _, listing = await api.call("GET", "/apis/authorization.k8s.io/v1")
    by_name = {r["name"]: r for r in listing["resources"]}
    assert set(by_name) == {
        "localsubjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
    }
    assert all(r["verbs"] == ["create"] for r in by_name.values())
    assert by_name["localsubjectaccessreviews"]["namespaced"] is True
    _, core = await api.call("GET", "/api/v1")
    (token,) = [r for r in core["resources"] if r["name"] == "serviceaccounts/token"]
    assert (token["group"], token["version"], token["kind"], token["verbs"]) == (
        "authentication.k8s.io",
        "v1",
        "TokenRequest",
        ["create"],
    )


# -- bootstrap policy and controllers ------------------------------------------------------


async def test_bootstrap_creates_the_default_policy_and_keeps_edits(
    api: Api, tmp_path: Path
) -> None:
    roles = await api.client.list(RBAC, "ClusterRole")
    names = {r["metadata"]["name"] for r in roles.items}
    assert {
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
    } <= names
    for role in roles.items:
        assert role["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
    bindings = {
        b["metadata"]["name"]: b for b in (await api.client.list(RBAC, "ClusterRoleBinding")).items
    }
    assert [s["name"] for s in bindings["system:public-info-viewer"]["subjects"]] == [
        "system:authenticated",
        "system:unauthenticated",
    ]
    basic = await api.client.get(RBAC, "ClusterRole", "system:basic-user")
    basic["rules"] = []
    await api.client.update(basic)
    await api.client.delete(RBAC, "ClusterRole", "view")
    api.server.bootstrap()  # as at the next start
    assert (await api.client.get(RBAC, "ClusterRole", "system:basic-user"))["rules"] == []
    assert (await api.client.get(RBAC, "ClusterRole", "view"))["aggregationRule"]


async def test_controllers_aggregate_roles_fill_token_secrets_and_default_accounts(
    api: Api,
) -> None:
    manager = ControllerManager(api.client, api.clock)
    manager.add(ClusterRoleAggregationController(api.client, api.clock))
    manager.add(ServiceAccountsController(api.client, api.clock))
    manager.add(
        TokenSecretsController(
            api.client, api.clock, api.server.signer.issue_legacy, lambda: api.server.ca_certificate
        )
    )
    await manager.start()
    try:

        async def view_has_pods() -> bool:
            rules = (await api.client.get(RBAC, "ClusterRole", "view")).get("rules") or []
            return any("pods" in r.get("resources", ()) for r in rules)

        await eventually(view_has_pods)

        async def edit_has_view_and_secrets() -> bool:
            rules = (await api.client.get(RBAC, "ClusterRole", "edit")).get("rules") or []
            flat = {res for r in rules for res in r.get("resources", ())}
            return {"pods/log", "secrets"} <= flat

        await eventually(edit_has_view_and_secrets)
        # A user's role joins `view` by its label.
        await api.client.create(
            {
                "apiVersion": RBAC,
                "kind": "ClusterRole",
                "metadata": {
                    "name": "widgets-view",
                    "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"},
                },
                "rules": [
                    {"verbs": ["get"], "apiGroups": ["example.com"], "resources": ["widgets"]}
                ],
            }
        )

        async def view_has_widgets() -> bool:
            rules = (await api.client.get(RBAC, "ClusterRole", "view")).get("rules") or []
            return any("widgets" in r.get("resources", ()) for r in rules)

        await eventually(view_has_widgets)

        # `default` accounts everywhere.
        await api.client.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
        )

        async def has_default() -> bool:
            names = {
                a["metadata"]["namespace"]
                for a in (await api.client.list("v1", "ServiceAccount")).items
            }
            return {"default", "kube-system", "team"} <= names

        await eventually(has_default)

        # A legacy token Secret is filled, authenticates, and dies with its account.
        await api.account("bot")
        await api.client.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": {
                    "name": "bot-token",
                    "namespace": "default",
                    "annotations": {"kubernetes.io/service-account.name": "bot"},
                },
            }
        )

        async def filled() -> bool:
            data = (await api.client.get("v1", "Secret", "bot-token", "default")).get("data") or {}
            return {"token", "ca.crt", "namespace"} <= set(data)

        await eventually(filled)
        data = (await api.client.get("v1", "Secret", "bot-token", "default"))["data"]
        assert base64.b64decode(data["namespace"]) == b"default"
        assert base64.b64decode(data["ca.crt"]) == api.server.ca_certificate
        token = base64.b64decode(data["token"]).decode()
        code, body = await api.call(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            token,
            {"kind": "SelfSubjectReview"},
        )
        assert (
            code == 201
            and body["status"]["userInfo"]["username"] == "system:serviceaccount:default:bot"
        )
        await api.client.delete("v1", "ServiceAccount", "bot", "default")
        assert (await api.call("GET", "/api", token))[0] == 401

        async def secret_gone() -> bool:
            names = {
                s["metadata"]["name"]
                for s in (await api.client.list("v1", "Secret", "default")).items
            }
            return "bot-token" not in names

        await eventually(secret_gone)
    finally:
        await manager.stop()


async def test_token_review_says_who_a_token_is_and_for_which_audiences(api: Api) -> None:
    await api.account()
    api_token = await api.token()
    vault_token = await api.token(audiences=["vault"])
    reviews = "/apis/authentication.k8s.io/v1/tokenreviews"

    async def review(token: str, caller: str | None = None, **spec: Any) -> tuple[int, Any]:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, **spec},
        }
        return await api.call("POST", reviews, caller, body=body)

    code, body = await review(api_token)
    assert code == 201
    assert body["status"]["authenticated"] is True
    user = body["status"]["user"]
    assert user["username"] == "system:serviceaccount:default:app"
    assert "system:serviceaccounts:default" in user["groups"]
    assert body["status"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    # a token for another audience: only when that audience is asked for
    assert "authenticated" not in (await review(vault_token))[1]["status"]
    code, body = await review(vault_token, audiences=["vault", "other"])
    assert body["status"]["authenticated"] is True and body["status"]["audiences"] == ["vault"]
    code, body = await review("garbage")
    assert body["status"] == {"user": {}, "error": "invalid bearer token"}
    # reviewing tokens takes system:auth-delegator's permission
    code, body = await review(api_token, caller=api_token)
    assert code == 403
    await api.client.create(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "app-delegator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}],
        }
    )

    async def allowed() -> bool:
        return (await review(api_token, caller=api_token))[0] == 201

    await eventually(allowed)


def test_uncovered_grants_only_what_is_held() -> None:
    held = [
        PolicyRule(("get", "list"), ("",), ("pods",)),
        PolicyRule(("*",), ("apps",), ("deployments",)),
        PolicyRule(("get",), ("",), ("configmaps",), ("settings",)),
    ]
    assert uncovered(held, [PolicyRule(("get",), ("",), ("pods",))]) == []
    assert uncovered(held, [PolicyRule(("delete", "patch"), ("apps",), ("deployments",))]) == []
    assert set(uncovered(held, [PolicyRule(("get", "delete"), ("",), ("pods", "secrets"))])) == {
        PolicyRule(("delete",), ("",), ("pods",)),
        PolicyRule(("get", "delete"), ("",), ("secrets",)),
    }
    # a wildcard is granted only by a wildcard; a named grant does not cover all names
    assert uncovered(held, [PolicyRule(("*",), ("",), ("pods",))]) == [
        PolicyRule(("*",), ("",), ("pods",))
    ]
    assert uncovered(held, [PolicyRule(("get",), ("",), ("configmaps",))]) != []
    assert uncovered(held, [PolicyRule(("get",), ("",), ("configmaps",), ("settings",))]) == []


async def test_nobody_grants_what_they_do_not_hold(api: Api) -> None:
    await api.account()
    token = await api.token()
    await api.grant_pod_reading()
    await api.client.create(
        {
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": {"name": "rbac-writer", "namespace": "default"},
            "rules": [
                {
                    "verbs": ["create", "update"],
                    "apiGroups": ["rbac.authorization.k8s.io"],
                    "resources": ["roles", "rolebindings"],
                }
            ],
        }
    )
    await api.client.create(
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": "rbac-writer", "namespace": "default"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "rbac-writer"},
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}],
        }
    )
    roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles"

    def role(name: str, verbs: list[str]) -> JSONDict:
        return {
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": {"name": name},
            "rules": [{"verbs": verbs, "apiGroups": [""], "resources": ["pods"]}],
        }

    async def created(body: JSONDict, url: str = roles) -> tuple[int, Any]:
        return await api.call("POST", url, token, body=body)

    code, body = await created(role("pod-deleter", ["get", "delete"]))
    assert code == 403
    assert body["message"] == (
        'roles.rbac.authorization.k8s.io "pod-deleter" is forbidden: user '
        '"system:serviceaccount:default:app" (groups=["system:serviceaccounts" '
        '"system:serviceaccounts:default" "system:authenticated"]) is attempting to grant RBAC '
        'permissions not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}'
    )
    assert (await created(role("pod-viewer", ["get", "list"])))[0] == 201
    binding = {
        "apiVersion": RBAC,
        "kind": "RoleBinding",
        "metadata": {"name": "everything"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}],
    }
    bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings"
    code, body = await created(binding, bindings)
    assert (
        code == 403
        and "is attempting to grant RBAC permissions not currently held" in (body["message"])
    )
    # `bind` on the role lets one bind it without holding it, as upstream
    await api.client.create(
        {
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": {"name": "binder", "namespace": "default"},
            "rules": [
                {
                    "verbs": ["bind"],
                    "apiGroups": ["rbac.authorization.k8s.io"],
                    "resources": ["clusterroles"],
                    "resourceNames": ["cluster-admin"],
                }
            ],
        }
    )
    await api.client.create(
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": "binder", "namespace": "default"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "binder"},
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}],
        }
    )

    async def bound() -> bool:
        return (await created(binding, bindings))[0] == 201

    await eventually(bound)
