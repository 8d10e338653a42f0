"""`pods/eviction`: the pure decisions, then the endpoint over HTTP against a real API server
(budgets' statuses are written by hand here; the disruption controller's own tests are in
tests/unit/controllers/test_disruption.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.eviction import (
    MULTIPLE_BUDGETS,
    TOO_MANY_REQUESTS,
    budgets_for,
    can_ignore_budget,
    decrement,
    merge_dry_run,
    parse_eviction,
    unhealthy_may_go,
)
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.errors import NotFoundError
from reconciler.client.inprocess import InProcessClient

JSONDict = dict[str, Any]

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def pod(
    name: str, labels: dict[str, str] | None = None, phase: str = "Running", ready: bool = True
) -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def budget(
    name: str = "web",
    selector: JSONDict | None = None,
    allowed: int = 1,
    healthy: int = 3,
    desired: int = 2,
    generation: int = 1,
    observed: int = 1,
    **spec: Any,
) -> JSONDict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "default", "generation": generation},
        "spec": {"selector": selector or {"matchLabels": {"app": "web"}}, **spec},
        "status": {
            "observedGeneration": observed,
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": 3,
        },
    }


def eviction(name: str, **options: Any) -> JSONDict:
    body: JSONDict = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": "default"},
    }
    if options:
        body["deleteOptions"] = options
    return body


# -- pure decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be an Eviction object"),
        ({**eviction("a"), "kind": "Pod"}, "must be an Eviction of policy/v1 or policy/v1beta1"),
        ({**eviction("a"), "apiVersion": "v1"}, "not kind 'Eviction' of apiVersion 'v1'"),
        ({**eviction("a"), "metadata": None}, "metadata: the Eviction needs metadata"),
        (eviction("b"), "name in URL does not match name in Eviction object"),
        (
            {**eviction("a"), "metadata": {"name": "a", "namespace": "other"}},
            "namespace of the provided object does not match",
        ),
        ({**eviction("a"), "deleteOptions": 3}, "deleteOptions: must be a DeleteOptions object"),
        (eviction("a", gracePeriodSeconds="5"), "deleteOptions.gracePeriodSeconds: must be"),
        (eviction("a", preconditions=["x"]), "deleteOptions.preconditions: must be an object"),
        (eviction("a", dryRun=["Some"]), "deleteOptions.dryRun: the only valid value"),
        (eviction("a", gracePeriod=3), "deleteOptions: unknown field 'gracePeriod'"),
    ],
)
def test_bad_evictions_are_refused_naming_the_field(body: object, message: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_eviction(body, "a", "default")
    assert raised.value.code == 400
    assert message in raised.value.message


def test_an_eviction_carries_its_delete_options() -> None:
    parsed = parse_eviction(eviction("a", gracePeriodSeconds=0), "a", "default")
    assert parsed.name == "a" and parsed.delete_options == {"gracePeriodSeconds": 0}
    v1beta1 = {**eviction("a"), "apiVersion": "policy/v1beta1"}
    assert parse_eviction(v1beta1, "a", "default").delete_options == {}


@pytest.mark.parametrize(
    ("body", "query", "merged"),
    [
        ({}, [], {}),
        ({}, ["All"], {"dryRun": ["All"]}),
        ({"dryRun": ["All"]}, [], {"dryRun": ["All"]}),
        ({"dryRun": ["All"]}, ["All"], {"dryRun": ["All"]}),
        ({"gracePeriodSeconds": 1}, ["All"], {"gracePeriodSeconds": 1, "dryRun": ["All"]}),
    ],
)
def test_dry_run_comes_from_the_query_or_the_body(
    body: JSONDict, query: list[str], merged: JSONDict
) -> None:
    assert merge_dry_run(body, query) == merged


def test_two_different_dry_runs_are_refused() -> None:
    with pytest.raises(ApiError, match="Non-matching dry-run options"):
        merge_dry_run({"dryRun": ["All"]}, ["All", "All"])


@pytest.mark.parametrize(
    ("phase", "deleting", "ignored"),
    [
        ("Succeeded", False, True),
        ("Failed", False, True),
        ("Pending", False, True),
        ("Running", True, True),
        ("Running", False, False),
        ("Unknown", False, False),
    ],
)
def test_which_pods_skip_the_budget(phase: str, deleting: bool, ignored: bool) -> None:
    p = pod("a", phase=phase)
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-03-01T12:00:00Z"
    assert can_ignore_budget(p) is ignored


def test_budgets_match_by_selector_in_the_pods_namespace() -> None:
    other_ns = budget("elsewhere")
    other_ns["metadata"]["namespace"] = "other"
    everything = budget("all", selector={})
    no_selector = budget("none")
    no_selector["spec"].pop("selector")
    bad = budget("bad", selector={"matchExpressions": [{"key": "a", "operator": "Near"}]})
    db = budget("db", selector={"matchLabels": {"app": "db"}})
    expr = budget("expr", selector={"matchExpressions": [{"key": "app", "operator": "Exists"}]})
    found = budgets_for(pod("a"), [other_ns, everything, no_selector, bad, db, expr, budget()])
    assert [b["metadata"]["name"] for b in found] == ["all", "expr", "web"]


@pytest.mark.parametrize(
    ("ready", "policy", "healthy", "desired", "may_go"),
    [
        (True, None, 5, 2, False),  # a ready pod always spends the budget
        (False, None, 2, 2, True),  # IfHealthyBudget: the application is healthy anyway
        (False, "IfHealthyBudget", 3, 2, True),
        (False, None, 1, 2, False),  # the application is short: the budget decides
        (False, None, 0, 0, False),  # desiredHealthy 0: nothing to be healthy about
        (False, "AlwaysAllow", 0, 2, True),
    ],
)
def test_unready_pods_under_the_eviction_policy(
    ready: bool, policy: str | None, healthy: int, desired: int, may_go: bool
) -> None:
    b = budget(healthy=healthy, desired=desired)
    if policy:
        b["spec"]["unhealthyPodEvictionPolicy"] = policy
    assert unhealthy_may_go(pod("a", ready=ready), b) is may_go


def test_decrement_spends_one_and_records_the_pod() -> None:
    status = decrement(budget(allowed=2), "web-1", NOW)
    assert status["disruptionsAllowed"] == 1
    assert status["disruptedPods"] == {"web-1": "2026-03-01T12:00:00Z"}
    assert "conditions" not in status  # only the last allowed disruption flips it


def test_spending_the_last_disruption_turns_the_condition_false() -> None:
    b = budget(allowed=1)
    b["status"]["conditions"] = [
        {
            "type": "DisruptionAllowed",
            "status": "True",
            "reason": "SufficientPods",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
    status = decrement(b, "web-1", NOW)
    assert status["disruptionsAllowed"] == 0
    (condition,) = status["conditions"]
    assert condition["status"] == "False" and condition["reason"] == "InsufficientPods"
    assert condition["lastTransitionTime"] == "2026-03-01T12:00:00Z"
    assert b["status"]["disruptionsAllowed"] == 1  # the input is left alone


@pytest.mark.parametrize(
    ("b", "code", "cause"),
    [
        (budget(allowed=0, healthy=2), 429, "The disruption budget web needs 2 healthy pods"),
        (budget(generation=2, observed=1), 429, "web is still being processed by the server"),
        (budget(allowed=5, generation=1, observed=0), 429, "still being processed"),
        (budget(allowed=-1), 403, "pdb disruptions allowed is negative"),
    ],
)
def test_refusals(b: JSONDict, code: int, cause: str) -> None:
    with pytest.raises(ApiError) as raised:
        decrement(b, "web-1", NOW)
    error = raised.value
    assert error.code == code
    status = error.status()
    if code == 429:
        assert status["reason"] == "TooManyRequests" and status["message"] == TOO_MANY_REQUESTS
        (found,) = status["details"]["causes"]
        assert found["reason"] == "DisruptionBudget" and cause in found["message"]
    else:
        assert status["reason"] == "Forbidden" and cause in status["message"]


def test_too_many_unconfirmed_evictions_are_forbidden() -> None:
    b = budget(allowed=3)
    b["status"]["disruptedPods"] = {f"p{i}": "2026-03-01T12:00:00Z" for i in range(2001)}
    with pytest.raises(ApiError, match="DisruptedPods map too big"):
        decrement(b, "web-1", NOW)


# -- the endpoint -----------------------------------------------------------------------------


@dataclass
class Api:
    server: ApiServer
    client: InProcessClient
    http: aiohttp.ClientSession

    async def evict(
        self, name: str, body: JSONDict | None = None, query: str = ""
    ) -> tuple[int, JSONDict]:
        url = f"/api/v1/namespaces/default/pods/{name}/eviction{query}"
        async with self.http.post(url, data=json.dumps(body or eviction(name))) as response:
            return response.status, await response.json()

    async def running(self, name: str, ready: bool = True, **labels: str) -> JSONDict:
        created = await self.client.create({**pod(name, labels or None), "status": {}})
        created["status"] = pod(name, ready=ready)["status"]
        return await self.client.update(created, subresource="status")

    async def budget(self, b: JSONDict) -> JSONDict:
        status = b.pop("status")
        created = await self.client.create(b)
        created["status"] = status
        return await self.client.update(created, subresource="status")

    async def exists(self, name: str) -> bool:
        try:
            await self.client.get("v1", "Pod", name, "default")
        except NotFoundError:
            return False
        return True

    async def pdb(self, name: str = "web") -> JSONDict:
        return await self.client.get("policy/v1", "PodDisruptionBudget", name, "default")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    assert server.credentials is not None
    async with aiohttp.ClientSession(
        base_url=f"https://127.0.0.1:{server.port}",
        headers={
            "Authorization": f"Bearer {server.credentials.token}",
            "Content-Type": "application/json",
        },
        connector=aiohttp.TCPConnector(ssl=False),
    ) as http:
        yield Api(server, InProcessClient(server.service), http)
    await server.stop()


async def test_discovery_lists_pods_eviction_as_kubectl_drain_looks_for_it(api: Api) -> None:
    async with api.http.get("/api/v1") as response:
        resources = (await response.json())["resources"]
    (entry,) = [r for r in resources if r["name"] == "pods/eviction"]
    assert entry == {
        "name": "pods/eviction",
        "singularName": "",
        "namespaced": True,
        "group": "policy",
        "version": "v1",
        "kind": "Eviction",
        "verbs": ["create"],
    }


async def test_evicting_a_missing_pod_is_404(api: Api) -> None:
    code, body = await api.evict("ghost")
    assert code == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'pods "ghost" not found'


async def test_a_pod_without_a_budget_is_deleted(api: Api) -> None:
    await api.running("lonely", app="lonely")
    code, body = await api.evict("lonely")
    assert code == 201
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }
    assert not await api.exists("lonely")


async def test_eviction_within_the_budget_spends_it_then_deletes(api: Api) -> None:
    await api.budget(budget(allowed=1))
    await api.running("web-1")
    code, _ = await api.evict("web-1")
    assert code == 201
    assert not await api.exists("web-1")
    status = (await api.pdb())["status"]
    assert status["disruptionsAllowed"] == 0
    assert list(status["disruptedPods"]) == ["web-1"]
    assert status["conditions"][0]["reason"] == "InsufficientPods"


async def test_a_budget_at_its_limit_refuses_and_stores_nothing(api: Api) -> None:
    await api.budget(budget(allowed=0, healthy=2, desired=2))
    await api.running("web-1")
    revision = api.server.store.revision
    code, body = await api.evict("web-1")
    assert code == 429
    assert body["reason"] == "TooManyRequests" and body["message"] == TOO_MANY_REQUESTS
    assert body["details"]["causes"][0] == {
        "reason": "DisruptionBudget",
        "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
        "field": "",
    }
    assert api.server.store.revision == revision
    assert await api.exists("web-1")


async def test_a_budget_not_yet_observed_refuses(api: Api) -> None:
    await api.budget(budget(allowed=2, observed=0))
    await api.running("web-1")
    code, body = await api.evict("web-1")
    assert code == 429 and body["details"]["retryAfterSeconds"] == 10
    assert "still being processed" in body["details"]["causes"][0]["message"]


async def test_dry_run_checks_but_changes_nothing(api: Api) -> None:
    await api.budget(budget(allowed=1))
    await api.running("web-1")
    revision = api.server.store.revision
    code, _ = await api.evict("web-1", query="?dryRun=All")
    assert code == 201
    code, _ = await api.evict("web-1", eviction("web-1", dryRun=["All"]))
    assert code == 201
    assert api.server.store.revision == revision
    assert await api.exists("web-1")
    # ... and a dry run that would be refused is refused.
    await api.budget(budget("tight", selector={"matchLabels": {"app": "db"}}, allowed=0))
    await api.running("db-1", app="db")
    code, _ = await api.evict("db-1", query="?dryRun=All")
    assert code == 429


async def test_a_pod_under_two_budgets_is_a_500(api: Api) -> None:
    await api.budget(budget("one"))
    await api.budget(budget("two", selector={}))
    await api.running("web-1")
    revision = api.server.store.revision
    code, body = await api.evict("web-1")
    assert code == 500
    assert body["status"] == "Failure" and body["message"] == MULTIPLE_BUDGETS
    assert api.server.store.revision == revision


async def test_finished_and_pending_pods_skip_the_budget(api: Api) -> None:
    await api.budget(budget(allowed=0))
    for name, phase in (("done", "Succeeded"), ("waiting", "Pending")):
        created = await api.client.create(pod(name))
        created["status"] = {"phase": phase}
        await api.client.update(created, subresource="status")
        code, _ = await api.evict(name)
        assert code == 201 and not await api.exists(name)
    assert (await api.pdb())["status"]["disruptionsAllowed"] == 0


async def test_an_unready_pod_goes_when_the_application_is_healthy(api: Api) -> None:
    await api.budget(budget(allowed=0, healthy=2, desired=2))
    await api.running("web-sick", ready=False)
    code, _ = await api.evict("web-sick")
    assert code == 201 and not await api.exists("web-sick")
    assert "disruptedPods" not in (await api.pdb())["status"]  # the budget was not spent


async def test_delete_options_apply(api: Api) -> None:
    await api.running("web-1", app="x")
    code, body = await api.evict("web-1", eviction("web-1", preconditions={"uid": "not-it"}))
    assert code == 409 and "Precondition failed: UID" in body["message"]
    assert await api.exists("web-1")
    # A bound pod gets the grace period it is evicted with, and the DisruptionTarget condition.
    bound = {**pod("web-2", {"app": "x"}), "status": {}}
    bound["spec"]["nodeName"] = "node-1"
    await api.client.create(bound)
    code, _ = await api.evict("web-2", eviction("web-2", gracePeriodSeconds=7))
    assert code == 201
    going = await api.client.get("v1", "Pod", "web-2", "default")
    assert going["metadata"]["deletionGracePeriodSeconds"] == 7
    target = [c for c in going["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert target[0]["reason"] == "EvictionByEvictionAPI"


async def test_a_conflicting_budget_write_is_retried_on_the_fresh_budget(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer changes the budget between the eviction's read and its write: the
    write conflicts, and the eviction decrements the budget as that writer left it."""
    await api.budget(budget(allowed=2))
    await api.running("web-1")
    service = api.server.service
    original = service.update
    raced: list[int] = []

    def racing_update(rt: Any, namespace: str, name: str, body: Any, **kw: Any) -> JSONDict:
        if rt.kind == "PodDisruptionBudget" and not raced:
            raced.append(1)
            fresh = json.loads(json.dumps(service.get(rt, namespace, name)))
            fresh["status"]["disruptionsAllowed"] = 1  # the controller saw a pod go unready
            original(rt, namespace, name, fresh, subresource="status")
        return original(rt, namespace, name, body, **kw)

    monkeypatch.setattr(service, "update", racing_update)
    code, _ = await api.evict("web-1")
    assert code == 201 and raced
    status = (await api.pdb())["status"]
    assert status["disruptionsAllowed"] == 0 and list(status["disruptedPods"]) == ["web-1"]


async def test_bad_requests(api: Api) -> None:
    await api.running("web-1", app="x")
    code, body = await api.evict("web-1", eviction("web-2"))
    assert code == 400 and body["message"] == "name in URL does not match name in Eviction object"
    code, body = await api.evict("web-1", query="?dryRun=Yes")
    assert code == 400 and "dryRun" in body["message"]
    async with api.http.get("/api/v1/namespaces/default/pods/web-1/eviction") as response:
        assert response.status == 405
    assert await api.exists("web-1")
