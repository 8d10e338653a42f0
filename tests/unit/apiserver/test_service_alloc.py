"""Service cluster IPs and node ports, against a real embedded API server.

Writes go through the in-process client (the same `ObjectService` path as HTTP); the
concurrency test goes over HTTPS with many requests in flight at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.apiserver.service_alloc import ServiceAllocator
from reconciler.client.errors import AlreadyExistsError, ClientError, InvalidError
from reconciler.client.http import HttpClient
from reconciler.client.inprocess import InProcessClient

JSONDict = dict[str, Any]

CIDR = ipaddress.ip_network("10.96.0.0/12")


class Api:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.server: ApiServer | None = None
        self.client: InProcessClient

    async def start(self) -> None:
        self.server = ApiServer(ServerOptions(data_dir=self.path, port=0))
        await self.server.start()
        self.client = InProcessClient(self.server.service)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def create(self, name: str, namespace: str = "default", **spec: Any) -> JSONDict:
        return await self.client.create(service(name, namespace, **spec))

    async def get(self, name: str, namespace: str = "default") -> JSONDict:
        return await self.client.get("v1", "Service", name, namespace)


def service(name: str, namespace: str = "default", **spec: Any) -> JSONDict:
    spec.setdefault("ports", [{"port": 80}])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    env = Api(tmp_path)
    await env.start()
    yield env
    await env.stop()


def node_ports(svc: JSONDict) -> list[int]:
    return [p.get("nodePort", 0) for p in svc["spec"]["ports"]]


async def expect_invalid(coro: Any, message: str) -> ClientError:
    with pytest.raises(InvalidError) as info:
        await coro
    assert message in info.value.message, info.value.message
    return info.value


# -- create ----------------------------------------------------------------------------------


async def test_cluster_ip_service_gets_an_ip_and_the_defaults(api: Api) -> None:
    svc = await api.create("web", selector={"app": "web"})
    spec = svc["spec"]
    ip = ipaddress.ip_address(spec["clusterIP"])
    assert ip in CIDR
    assert str(ip) not in ("10.96.0.0", "10.96.0.1", "10.111.255.255")
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["sessionAffinity"] == "None"
    assert spec["type"] == "ClusterIP"
    assert "nodePort" not in spec["ports"][0]


async def test_every_service_gets_its_own_ip(api: Api) -> None:
    ips = {(await api.create(f"s{i}"))["spec"]["clusterIP"] for i in range(30)}
    assert len(ips) == 30


def test_pod_addresses_are_never_picked() -> None:
    # A /12 whose upper half is reserved: every pick lands in the lower half.
    alloc = ServiceAllocator(
        ipaddress.IPv4Network("10.0.0.0/28"), reserved=ipaddress.IPv4Network("10.0.0.8/29")
    )
    for i in range(6):
        obj = service(f"s{i}")
        alloc.prepare(obj, None)
        alloc.load([obj])
        assert ipaddress.IPv4Address(obj["spec"]["clusterIP"]) < ipaddress.IPv4Address("10.0.0.8")
    with pytest.raises(ApiError):
        alloc.prepare(service("full"), None)


async def test_the_kubernetes_service_gets_the_first_ip(api: Api) -> None:
    svc = await api.create("kubernetes", ports=[{"name": "https", "port": 443}])
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    other = await api.create("kubernetes", namespace="kube-system")
    assert other["spec"]["clusterIP"] != "10.96.0.1"


async def test_headless_and_external_name_get_no_ip(api: Api) -> None:
    headless = await api.create("db", clusterIP="None", selector={"app": "db"})
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["clusterIPs"] == ["None"]
    assert headless["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert headless["spec"]["ipFamilies"] == ["IPv4"]
    selectorless = await api.create("peers", clusterIP="None")
    assert selectorless["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    assert selectorless["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    external = await api.create("ext", type="ExternalName", externalName="example.com")
    for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert key not in external["spec"]
    assert "internalTrafficPolicy" not in external["spec"]


async def test_a_requested_ip_must_be_free_and_in_range(api: Api) -> None:
    svc = await api.create("a", clusterIP="10.96.0.50")
    assert svc["spec"]["clusterIPs"] == ["10.96.0.50"]
    err = await expect_invalid(
        api.create("b", clusterIP="10.96.0.50"),
        'Service "b" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.50"]: '
        "failed to allocate IP 10.96.0.50: provided IP is already allocated",
    )
    assert err.causes[0]["field"] == "spec.clusterIPs"
    await expect_invalid(
        api.create("c", clusterIP="10.0.0.5"),
        "failed to allocate IP 10.0.0.5: the provided IP (10.0.0.5) is not in the valid "
        "range. The range of valid IPs is 10.96.0.0/12",
    )
    await expect_invalid(api.create("d", clusterIP="10.96.0.0"), "is not in the valid range")
    await expect_invalid(
        api.create("e", clusterIP="banana"),
        'spec.clusterIPs[0]: Invalid value: "banana": must be a valid IP address',
    )
    await expect_invalid(
        api.create("f", clusterIP="10.96.0.60", clusterIPs=["10.96.0.61"]),
        "first value must match `clusterIP`",
    )
    await expect_invalid(
        api.create("g", ipFamilies=["IPv6"]),
        'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster',
    )
    await expect_invalid(
        api.create("p", clusterIP="10.111.0.9"),
        "failed to allocate IP 10.111.0.9: addresses in 10.111.0.0/16 are reserved for pods "
        "on this node",
    )
    # None of the rejected writes holds anything.
    assert (await api.create("h", clusterIP="10.96.0.60"))["spec"]["clusterIP"] == "10.96.0.60"


async def test_node_port_services_get_a_node_port_per_port(api: Api) -> None:
    svc = await api.create(
        "np",
        type="NodePort",
        ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}],
    )
    ports = node_ports(svc)
    assert all(30000 <= p <= 32767 for p in ports) and len(set(ports)) == 2
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    assert ipaddress.ip_address(svc["spec"]["clusterIP"]) in CIDR


async def test_tcp_and_udp_of_one_port_share_a_node_port(api: Api) -> None:
    svc = await api.create(
        "dns",
        type="NodePort",
        ports=[
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "dns-udp", "port": 53, "protocol": "UDP"},
        ],
    )
    first, second = node_ports(svc)
    assert first == second


async def test_requested_node_ports(api: Api) -> None:
    svc = await api.create("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    assert node_ports(svc) == [30080]
    err = await expect_invalid(
        api.create("b", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]),
        "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated",
    )
    assert err.causes[0]["field"] == "spec.ports[0].nodePort"
    await expect_invalid(
        api.create("c", type="NodePort", ports=[{"port": 80, "nodePort": 8080}]),
        "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid "
        "range. The range of valid ports is 30000-32767",
    )
    await expect_invalid(
        api.create("d", ports=[{"port": 80, "nodePort": 30081}]),
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
    )
    await expect_invalid(
        api.create(
            "e",
            type="NodePort",
            ports=[
                {"name": "a", "port": 80, "nodePort": 30082},
                {"name": "b", "port": 81, "nodePort": 30082},
            ],
        ),
        "spec.ports[1].nodePort: Duplicate value: 30082",
    )
    # The rejected ones hold nothing.
    ok = await api.create("f", type="NodePort", ports=[{"port": 80, "nodePort": 30082}])
    assert node_ports(ok) == [30082]


async def test_load_balancer_node_ports(api: Api) -> None:
    lb = await api.create("lb", type="LoadBalancer")
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    assert 30000 <= node_ports(lb)[0] <= 32767
    bare = await api.create("bare", type="LoadBalancer", allocateLoadBalancerNodePorts=False)
    assert node_ports(bare) == [0]


async def test_dry_run_and_failed_creates_hold_nothing(api: Api) -> None:
    dry = await api.client.create(service("x", clusterIP="10.96.0.70"), dry_run=True)
    assert dry["spec"]["clusterIP"] == "10.96.0.70"
    guess = await api.client.create(service("y"), dry_run=True)
    assert ipaddress.ip_address(guess["spec"]["clusterIP"]) in CIDR
    await api.create("x", clusterIP="10.96.0.70")
    with pytest.raises(AlreadyExistsError):
        await api.create(
            "x", clusterIP="10.96.0.71", type="NodePort", ports=[{"port": 80, "nodePort": 30071}]
        )
    again = await api.create(
        "z", clusterIP="10.96.0.71", type="NodePort", ports=[{"port": 80, "nodePort": 30071}]
    )
    assert again["spec"]["clusterIP"] == "10.96.0.71"


# -- update ----------------------------------------------------------------------------------


async def test_updates_that_omit_allocated_values_keep_them(api: Api) -> None:
    svc = await api.create("web", type="NodePort", ports=[{"name": "http", "port": 80}])
    ip, port = svc["spec"]["clusterIP"], node_ports(svc)[0]
    # A replace (PUT) from a client that never saw the allocated values.
    fresh = service(
        "web", type="NodePort", ports=[{"name": "http", "port": 80, "targetPort": 8080}]
    )
    fresh["metadata"]["resourceVersion"] = svc["metadata"]["resourceVersion"]
    replaced = await api.client.update(fresh)
    assert replaced["spec"]["clusterIP"] == ip and replaced["spec"]["clusterIPs"] == [ip]
    assert node_ports(replaced) == [port]
    assert replaced["spec"]["ports"][0]["targetPort"] == 8080
    # A strategic patch that rewrites the port list without nodePort.
    patched = await api.client.patch(
        "v1",
        "Service",
        "web",
        {"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9090}]}},
        patch_type="strategic",
    )
    assert node_ports(patched) == [port]
    assert patched["spec"]["clusterIP"] == ip
    # A no-op replace does not even bump the revision.
    same = await api.client.update(patched | {"spec": {**patched["spec"], "clusterIP": ""}})
    assert same["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]


async def test_a_new_port_in_an_update_gets_a_node_port(api: Api) -> None:
    svc = await api.create("web", type="NodePort", ports=[{"name": "http", "port": 80}])
    patched = await api.client.patch(
        "v1",
        "Service",
        "web",
        {"spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}},
        patch_type="merge",
    )
    first, second = node_ports(patched)
    assert first == node_ports(svc)[0]
    assert 30000 <= second <= 32767 and second != first


async def test_changing_the_cluster_ip_is_rejected(api: Api) -> None:
    svc = await api.create("web")
    ip = svc["spec"]["clusterIP"]
    other = "10.96.0.99" if ip != "10.96.0.99" else "10.96.0.98"
    await expect_invalid(
        api.client.patch("v1", "Service", "web", {"spec": {"clusterIP": other}}),
        f'spec.clusterIPs[0]: Invalid value: ["{other}"]: may not change once set',
    )
    await expect_invalid(
        api.client.patch(
            "v1", "Service", "web", {"spec": {"clusterIP": "None", "clusterIPs": ["None"]}}
        ),
        'spec.clusterIPs[0]: Invalid value: ["None"]: may not change once set',
    )
    assert (await api.get("web"))["spec"]["clusterIP"] == ip


async def test_node_port_to_cluster_ip_releases_the_node_ports(api: Api) -> None:
    await api.create("web", type="NodePort", ports=[{"port": 80, "nodePort": 30090}])
    # As `kubectl apply` would send it: the type changes, nodePort is not mentioned.
    changed = await api.client.patch("v1", "Service", "web", {"spec": {"type": "ClusterIP"}})
    assert "nodePort" not in changed["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in changed["spec"]
    other = await api.create("other", type="NodePort", ports=[{"port": 80, "nodePort": 30090}])
    assert node_ports(other) == [30090]
    # And back: a fresh node port.
    back = await api.client.patch("v1", "Service", "web", {"spec": {"type": "NodePort"}})
    assert node_ports(back)[0] not in (0, 30090)


async def test_a_changed_node_port_releases_the_old_one(api: Api) -> None:
    await api.create("web", type="NodePort", ports=[{"port": 80, "nodePort": 30100}])
    await api.client.patch(
        "v1", "Service", "web", {"spec": {"ports": [{"port": 80, "nodePort": 30101}]}}
    )
    assert node_ports(
        await api.create("b", type="NodePort", ports=[{"port": 80, "nodePort": 30100}])
    ) == [30100]
    await expect_invalid(
        api.create("c", type="NodePort", ports=[{"port": 80, "nodePort": 30101}]),
        "provided port is already allocated",
    )


async def test_to_external_name_and_back(api: Api) -> None:
    svc = await api.create("web", clusterIP="10.96.0.120")
    assert svc["spec"]["clusterIP"] == "10.96.0.120"
    ext = await api.client.patch(
        "v1", "Service", "web", {"spec": {"type": "ExternalName", "externalName": "example.com"}}
    )
    assert "clusterIP" not in ext["spec"] and "ipFamilies" not in ext["spec"]
    taken = await api.create("other", clusterIP="10.96.0.120")  # released
    assert taken["spec"]["clusterIP"] == "10.96.0.120"
    back = await api.client.patch(
        "v1", "Service", "web", {"spec": {"type": "ClusterIP", "externalName": None}}
    )
    assert back["spec"]["clusterIP"] not in ("", "10.96.0.120")
    assert back["spec"]["ipFamilies"] == ["IPv4"]


async def test_status_updates_leave_the_spec_alone(api: Api) -> None:
    svc = await api.create("lb", type="LoadBalancer")
    done = await api.client.patch(
        "v1",
        "Service",
        "lb",
        {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}},
        subresource="status",
    )
    assert done["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]
    assert done["spec"] == svc["spec"]


# -- delete, restart, concurrency ---------------------------------------------------------------


async def test_delete_releases_ip_and_node_ports(api: Api) -> None:
    await api.create(
        "web", clusterIP="10.96.0.130", type="NodePort", ports=[{"port": 80, "nodePort": 30130}]
    )
    await api.client.delete("v1", "Service", "web", "default")
    again = await api.create(
        "other", clusterIP="10.96.0.130", type="NodePort", ports=[{"port": 80, "nodePort": 30130}]
    )
    assert again["spec"]["clusterIP"] == "10.96.0.130" and node_ports(again) == [30130]


async def test_namespace_deletion_releases_its_services(api: Api) -> None:
    await api.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tmp"}})
    await api.create("web", namespace="tmp", clusterIP="10.96.0.140")
    await api.client.delete("v1", "Namespace", "tmp")

    async def released() -> bool:
        try:
            await api.create("web2", clusterIP="10.96.0.140")
        except InvalidError:
            return False
        return True

    for _ in range(200):
        if await released():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the IP of a Service of a deleted namespace was never released")


async def test_allocations_survive_a_restart(api: Api) -> None:
    first = await api.create("web", type="NodePort", ports=[{"port": 80}])
    ip, port = first["spec"]["clusterIP"], node_ports(first)[0]
    await api.restart()
    await expect_invalid(api.create("b", clusterIP=ip), "provided IP is already allocated")
    await expect_invalid(
        api.create("c", type="NodePort", ports=[{"port": 80, "nodePort": port}]),
        "provided port is already allocated",
    )
    # The kept values are still the Service's own: an update keeps them.
    updated = await api.client.patch("v1", "Service", "web", {"metadata": {"labels": {"a": "b"}}})
    assert updated["spec"]["clusterIP"] == ip and node_ports(updated) == [port]
    await api.client.delete("v1", "Service", "web", "default")
    await api.restart()
    assert (await api.create("d", clusterIP=ip))["spec"]["clusterIP"] == ip


async def test_concurrent_creates_over_http_never_share_a_value(api: Api) -> None:
    assert api.server is not None
    http = HttpClient.from_kubeconfig(api.server.kubeconfig)
    try:
        created = await asyncio.gather(
            *(
                http.create(service(f"c{i}", type="NodePort", ports=[{"port": 80}]))
                for i in range(40)
            )
        )
        contested = await asyncio.gather(
            *(http.create(service(f"want{i}", clusterIP="10.96.0.200")) for i in range(10)),
            return_exceptions=True,
        )
    finally:
        await http.close()
    ips = [s["spec"]["clusterIP"] for s in created]
    ports = [node_ports(s)[0] for s in created]
    assert len(set(ips)) == 40 and len(set(ports)) == 40
    winners = [r for r in contested if isinstance(r, dict)]
    assert len(winners) == 1
    assert all(isinstance(r, InvalidError) for r in contested if not isinstance(r, dict))


async def test_a_dry_run_predicts_the_values_a_create_gets(api: Api) -> None:
    body = service("predict", type="NodePort", ports=[{"port": 80}])
    dry = await api.client.create(body, dry_run=True)
    real = await api.client.create(body)
    assert real["spec"]["clusterIP"] == dry["spec"]["clusterIP"]
    assert node_ports(real) == node_ports(dry)
    # Deleted and created again, it gets its values back.
    await api.client.delete("v1", "Service", "predict", "default")
    again = await api.client.create(body)
    assert again["spec"]["clusterIP"] == real["spec"]["clusterIP"]
    assert node_ports(again) == node_ports(real)


# -- the allocator alone: a tiny range fills up ------------------------------------------------


def test_full_ranges_are_internal_errors() -> None:
    # 10.0.0.0/29: .1 stays for `kubernetes`, .7 is broadcast: .2-.6 are five IPs.
    alloc = ServiceAllocator(ipaddress.IPv4Network("10.0.0.0/29"), (30000, 30001))
    taken: list[str] = []
    for i in range(5):
        obj = service(f"s{i}")
        alloc.prepare(obj, None)
        alloc.load([obj])  # as the commit would record it
        taken.append(obj["spec"]["clusterIP"])
    assert sorted(taken) == [f"10.0.0.{n}" for n in range(2, 7)]
    with pytest.raises(ApiError) as info:
        alloc.prepare(service("one-too-many"), None)
    assert info.value.code == 500
    assert info.value.message == (
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    )
    master = service("kubernetes")
    alloc.prepare(master, None)
    assert master["spec"]["clusterIP"] == "10.0.0.1"
    # Two node ports, three ports wanting one each.
    small = ServiceAllocator(node_ports=(30000, 30001))
    ports = service(
        "np",
        type="NodePort",
        ports=[{"name": "a", "port": 1}, {"name": "b", "port": 2}, {"name": "c", "port": 3}],
    )
    with pytest.raises(ApiError) as info:
        small.prepare(ports, None)
    assert "failed to allocate a nodePort: range is full" in info.value.message
    two = service("np", type="NodePort", ports=[{"name": "a", "port": 1}, {"name": "b", "port": 2}])
    small.prepare(two, None)
    assert sorted(node_ports(two)) == [30000, 30001]
