"""Endpoints: ready and not-ready pods per Service, named ports, and the EndpointSlice."""

from __future__ import annotations

from typing import Any

from reconciler.client.errors import ConflictError, NotFoundError
from reconciler.controllers.endpoints import EndpointsController, plan_endpoints, plan_slice


def service(ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid"},
        "spec": {
            "selector": {"app": "web"},
            "ports": ports
            or [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def pod(
    name: str,
    ip: str | None,
    ready: bool = True,
    port_name: str = "http",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"{name}-uid",
            "labels": labels or {"app": "web"},
        },
        "spec": {
            "nodeName": "node",
            "containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": 8080}]}],
        },
        "status": {
            "podIP": ip,
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_ready_and_not_ready_addresses_with_named_ports() -> None:
    subsets = plan_endpoints(
        service(),
        [
            pod("a", "10.0.0.1"),
            pod("b", "10.0.0.2", ready=False),
            pod("c", None),
            pod("other", "10.0.0.9", labels={"app": "db"}),
        ],
    )["subsets"]
    assert subsets == [
        {
            "addresses": [
                {
                    "ip": "10.0.0.1",
                    "nodeName": "node",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": "default",
                        "name": "a",
                        "uid": "a-uid",
                    },
                }
            ],
            "notReadyAddresses": [
                {
                    "ip": "10.0.0.2",
                    "nodeName": "node",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": "default",
                        "name": "b",
                        "uid": "b-uid",
                    },
                }
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    ]


def test_pods_naming_ports_differently_land_in_different_subsets() -> None:
    subsets = plan_endpoints(service([{"port": 80, "targetPort": 9000}]), [pod("a", "10.0.0.1")])[
        "subsets"
    ]
    assert subsets[0]["ports"] == [{"port": 9000, "protocol": "TCP"}]
    mixed = plan_endpoints(
        service(), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", port_name="web")]
    )["subsets"]
    assert len(mixed) == 2 and mixed[1]["ports"] == []


def test_slice_mirrors_the_endpoints() -> None:
    subsets = plan_endpoints(service(), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", False)])
    slice_obj = plan_slice(service(), subsets["subsets"])
    assert slice_obj["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert [(e["addresses"], e["conditions"]["ready"]) for e in slice_obj["endpoints"]] == [
        (["10.0.0.1"], True),
        (["10.0.0.2"], False),
    ]
    assert slice_obj["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"


async def test_endpoints_follow_pod_readiness_on_the_embedded_server(plane: Any) -> None:
    p = await plane(EndpointsController)
    svc = service()
    del svc["metadata"]["uid"]
    await p.client.create(svc)
    await _ready_pod(p, "a", "10.1.0.5")

    async def ready_ips() -> list[str]:
        try:
            ep = await p.client.get("v1", "Endpoints", "web", "default")
        except Exception:
            return []
        return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]

    assert await p.eventually(ready_ips, what="the pod in the Endpoints") == ["10.1.0.5"]
    await p.client.patch(
        "v1",
        "Pod",
        "a",
        {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        namespace="default",
        subresource="status",
    )

    async def not_ready() -> bool:
        return await ready_ips() == []

    await p.eventually(not_ready, what="the pod to leave the ready addresses")
    slices = await p.client.list("discovery.k8s.io/v1", "EndpointSlice", "default")
    assert slices.items[0]["endpoints"][0]["conditions"]["ready"] is False


def test_terminating_and_finished_pods_leave_the_endpoints_at_once() -> None:
    terminating = pod("b", "10.0.0.2")
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    finished = pod("c", "10.0.0.3", ready=False)
    finished["status"]["phase"] = "Succeeded"
    subsets = plan_endpoints(service(), [pod("a", "10.0.0.1"), terminating, finished])
    listed = [
        (state, address["targetRef"]["name"])
        for subset in subsets["subsets"]
        for state in ("addresses", "notReadyAddresses")
        for address in subset.get(state) or []
    ]
    assert listed == [("addresses", "a")]


def test_publish_not_ready_addresses_lists_every_unfinished_pod_as_ready() -> None:
    """As Kubernetes: not-ready and terminating pods are `addresses`; finished ones never."""
    terminating = pod("b", "10.0.0.2")
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    finished = pod("d", "10.0.0.4")
    finished["status"]["phase"] = "Failed"
    svc = service()
    svc["spec"]["publishNotReadyAddresses"] = True
    pods = [pod("a", "10.0.0.1", ready=False), terminating, pod("c", None), finished]
    subsets = plan_endpoints(svc, pods)["subsets"]
    assert [(a["ip"], a["targetRef"]["name"]) for a in subsets[0]["addresses"]] == [
        ("10.0.0.1", "a"),
        ("10.0.0.2", "b"),
    ]
    assert "notReadyAddresses" not in subsets[0]
    assert [e["conditions"]["ready"] for e in plan_slice(svc, subsets)["endpoints"]] == [
        True,
        True,
    ]


class ConflictOnce:
    """The in-process client, except that the next Endpoints update armed with `arm()`
    fails with 409, as it does when the informer has not seen the previous write yet."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.armed = False
        self.conflicts = 0

    def arm(self) -> None:
        self.armed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def update(self, obj: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if self.armed and obj.get("kind") == "Endpoints":
            self.armed = False
            self.conflicts += 1
            raise ConflictError(409, "Conflict", "the object has been modified")
        return await self._client.update(obj, **kwargs)  # type: ignore[no-any-return]


async def test_a_conflicting_write_is_retried_not_dropped(plane: Any) -> None:
    wrapped: list[ConflictOnce] = []

    def make(client: Any, clock: Any) -> EndpointsController:
        wrapped.append(ConflictOnce(client))
        return EndpointsController(wrapped[0], clock)  # type: ignore[arg-type]

    p = await plane(make)
    svc = service()
    del svc["metadata"]["uid"]
    await p.client.create(svc)
    created = pod("a", None)
    del created["metadata"]["uid"], created["status"]
    created["apiVersion"], created["kind"] = "v1", "Pod"
    created["spec"]["containers"][0]["image"] = "x"
    await p.client.create(created)

    async def status(ready: str) -> None:
        await p.client.patch(
            "v1",
            "Pod",
            "a",
            {
                "status": {
                    "podIP": "10.1.0.5",
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": ready}],
                }
            },
            namespace="default",
            subresource="status",
        )

    async def addresses(state: str) -> list[str]:
        try:
            ep = await p.client.get("v1", "Endpoints", "web", "default")
        except NotFoundError:
            return []
        return [a["ip"] for s in ep.get("subsets") or [] for a in s.get(state) or []]

    await status("False")
    await p.eventually(lambda: addresses("notReadyAddresses"), what="a not-ready address")
    wrapped[0].arm()
    await status("True")  # the last event: nothing else would requeue the Service
    assert await p.eventually(lambda: addresses("addresses"), what="the pod ready") == ["10.1.0.5"]
    assert wrapped[0].conflicts == 1


async def _ready_pod(p: Any, name: str, ip: str, labels: dict[str, str] | None = None) -> None:
    created = pod(name, None, labels=labels) if labels is not None else pod(name, None)
    del created["metadata"]["uid"], created["status"]
    created["apiVersion"], created["kind"] = "v1", "Pod"
    created["spec"]["containers"][0]["image"] = "x"
    await p.client.create(created)
    await p.client.patch(
        "v1",
        "Pod",
        name,
        {
            "status": {
                "podIP": ip,
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
        namespace="default",
        subresource="status",
    )


async def _ready_ips(p: Any, name: str = "web") -> list[str]:
    try:
        ep = await p.client.get("v1", "Endpoints", name, "default")
    except NotFoundError:
        return []
    return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])


async def test_pod_events_follow_a_services_changed_selector(plane: Any) -> None:
    """The selectors are parsed once per Service change: a changed selector must be the one
    later pod events are matched against, and a removed one must match nothing."""
    p = await plane(EndpointsController)
    svc = service()
    del svc["metadata"]["uid"]
    await p.client.create(svc)
    await _ready_pod(p, "w", "10.1.0.1", {"app": "web"})

    async def ips(want: list[str]) -> bool:
        return await _ready_ips(p) == want

    await p.eventually(lambda: ips(["10.1.0.1"]), what="the web pod")
    await p.client.patch(
        "v1", "Service", "web", {"spec": {"selector": {"app": "db"}}}, namespace="default"
    )
    await p.eventually(lambda: ips([]), what="the web pod gone with the old selector")
    # Only a pod event can add this one: it must be matched against the new selector.
    await _ready_pod(p, "d", "10.1.0.2", {"app": "db"})
    await p.eventually(lambda: ips(["10.1.0.2"]), what="the db pod")
    # A pod relabelled out of the Service leaves it (the old labels are matched too).
    await p.client.patch(
        "v1", "Pod", "d", {"metadata": {"labels": {"app": "x"}}}, namespace="default"
    )
    await p.eventually(lambda: ips([]), what="the relabelled pod gone")
    await p.client.patch(
        "v1", "Pod", "d", {"metadata": {"labels": {"app": "db"}}}, namespace="default"
    )
    await p.eventually(lambda: ips(["10.1.0.2"]), what="the db pod back")
    # Deleted and created again without a selector: pods no longer wake it.
    controller = p.manager.controllers[0]
    await p.client.delete("v1", "Service", "web", "default")
    await p.eventually(lambda: ips([]), what="the Endpoints deleted with the Service")
    del svc["spec"]["selector"]
    await p.client.create(svc)
    await p.eventually(lambda: _true(not controller._selectors), what="no selector remembered")


async def _true(value: bool) -> bool:
    return value


async def test_a_pod_event_does_not_parse_any_selector(plane: Any, monkeypatch: Any) -> None:
    """333 Services x every pod update re-parsed was most of a first GitOps sync's time."""
    from reconciler.controllers import endpoints

    parsed: list[object] = []
    real = endpoints.label_selector_from_spec

    def counting(spec: Any) -> Any:
        parsed.append(spec)
        return real(spec)

    monkeypatch.setattr(endpoints, "label_selector_from_spec", counting)
    p = await plane(EndpointsController)
    for i in range(20):
        svc = service()
        svc["metadata"] = {"name": f"s{i}", "namespace": "default"}
        svc["spec"]["selector"] = {"app": f"a{i}"}
        await p.client.create(svc)
    await _ready_pod(p, "w", "10.1.0.1", {"app": "a3"})
    await p.eventually(lambda: _ready_ips(p, "s3"), what="the pod in s3's Endpoints")
    before = len(parsed)
    for n in range(10):
        await p.client.patch(
            "v1", "Pod", "w", {"metadata": {"annotations": {"n": str(n)}}}, namespace="default"
        )
    await p.client.patch(
        "v1", "Pod", "w", {"metadata": {"labels": {"app": "a4"}}}, namespace="default"
    )
    await p.eventually(lambda: _ready_ips(p, "s4"), what="the pod in s4's Endpoints")
    # 11 pod events, 20 Services: parsing every selector per event was at least 220 parses;
    # now only reconciles parse theirs: those of s3 and s4 (one per event), plus any of the
    # 20 Services' own creation still queued when counting began (timing-dependent).
    assert len(parsed) - before <= 11 + 20 + 2
