"""The kubelet's Service environment variables: names, values, which Services count."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.node.service_env import ServiceEnvCache, pod_service_env, service_env

JSONDict = dict[str, Any]


def svc(
    name: str, ip: str | None, *ports: JSONDict, namespace: str = "default", **spec: Any
) -> JSONDict:
    body: JSONDict = {"ports": list(ports), **spec}
    if ip is not None:
        body["clusterIP"] = ip
    return {"metadata": {"name": name, "namespace": namespace}, "spec": body}


def port(number: int, name: str | None = None, protocol: str | None = "TCP") -> JSONDict:
    out: JSONDict = {"port": number}
    if name:
        out["name"] = name
    if protocol:
        out["protocol"] = protocol
    return out


def test_one_unnamed_port_gives_exactly_the_kubelet_set() -> None:
    assert service_env([svc("web", "10.96.0.12", port(80))]) == {
        "WEB_SERVICE_HOST": "10.96.0.12",
        "WEB_SERVICE_PORT": "80",
        "WEB_PORT": "tcp://10.96.0.12:80",
        "WEB_PORT_80_TCP": "tcp://10.96.0.12:80",
        "WEB_PORT_80_TCP_PROTO": "tcp",
        "WEB_PORT_80_TCP_PORT": "80",
        "WEB_PORT_80_TCP_ADDR": "10.96.0.12",
    }


def test_named_ports_dashes_and_protocols() -> None:
    env = service_env(
        [
            svc(
                "redis-primary",
                "10.96.0.11",
                port(6379, "redis"),
                port(9121, "metrics-http"),
                port(53, "dns", "UDP"),
            )
        ]
    )
    assert env["REDIS_PRIMARY_SERVICE_HOST"] == "10.96.0.11"
    assert env["REDIS_PRIMARY_SERVICE_PORT"] == "6379"  # the first port
    assert env["REDIS_PRIMARY_SERVICE_PORT_REDIS"] == "6379"
    assert env["REDIS_PRIMARY_SERVICE_PORT_METRICS_HTTP"] == "9121"
    assert env["REDIS_PRIMARY_SERVICE_PORT_DNS"] == "53"
    assert env["REDIS_PRIMARY_PORT"] == "tcp://10.96.0.11:6379"
    assert env["REDIS_PRIMARY_PORT_9121_TCP"] == "tcp://10.96.0.11:9121"
    assert env["REDIS_PRIMARY_PORT_53_UDP"] == "udp://10.96.0.11:53"
    assert env["REDIS_PRIMARY_PORT_53_UDP_PROTO"] == "udp"
    assert env["REDIS_PRIMARY_PORT_53_UDP_PORT"] == "53"
    assert env["REDIS_PRIMARY_PORT_53_UDP_ADDR"] == "10.96.0.11"
    assert len(env) == 2 + 3 + 1 + 3 * 4


def test_missing_protocol_is_tcp() -> None:
    env = service_env([svc("a", "10.96.0.5", port(8080, protocol=None))])
    assert env["A_PORT"] == "tcp://10.96.0.5:8080"
    assert env["A_PORT_8080_TCP_PROTO"] == "tcp"


def test_ipv6_address_is_bracketed_in_urls_only() -> None:
    env = service_env([svc("v6", "fd00::10", port(80))])
    assert env["V6_PORT"] == "tcp://[fd00::10]:80"
    assert env["V6_PORT_80_TCP_ADDR"] == "fd00::10"


@pytest.mark.parametrize(
    "service",
    [
        svc("headless", "None", port(80)),
        svc("pending", None, port(80)),
        svc("pending2", "", port(80)),
        svc("ext", None, port(80), type="ExternalName", externalName="example.com"),
        svc("noports", "10.96.0.9"),
    ],
    ids=["headless", "no-ip", "empty-ip", "external-name", "no-ports"],
)
def test_services_without_a_usable_cluster_ip_add_nothing(service: JSONDict) -> None:
    assert service_env([service]) == {}


KUBERNETES = svc("kubernetes", "10.96.0.1", port(443, "https"))


def test_pod_gets_namespace_services_and_the_kubernetes_service() -> None:
    pod: JSONDict = {"metadata": {"namespace": "shop"}, "spec": {}}
    env = pod_service_env(
        pod,
        [svc("cart", "10.96.3.4", port(80), namespace="shop")],
        [KUBERNETES, svc("other", "10.96.9.9", port(80))],
    )
    assert env["CART_SERVICE_HOST"] == "10.96.3.4"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
    assert "OTHER_SERVICE_HOST" not in env  # only `kubernetes` comes from default


def test_enable_service_links_false_keeps_only_the_kubernetes_service() -> None:
    pod: JSONDict = {"metadata": {"namespace": "shop"}, "spec": {"enableServiceLinks": False}}
    env = pod_service_env(pod, [svc("cart", "10.96.3.4", port(80), namespace="shop")], [KUBERNETES])
    assert set(env) == {k for k in service_env([KUBERNETES])}
    assert "CART_SERVICE_HOST" not in env


def test_a_namespace_service_named_kubernetes_wins() -> None:
    pod: JSONDict = {"metadata": {"namespace": "shop"}, "spec": {}}
    own = svc("kubernetes", "10.96.7.7", port(80), namespace="shop")
    env = pod_service_env(pod, [own], [KUBERNETES])
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.7.7"


def test_pod_in_default_sees_kubernetes_once() -> None:
    pod: JSONDict = {"metadata": {"namespace": "default"}, "spec": {}}
    web = svc("web", "10.96.0.20", port(80))
    assert pod_service_env(pod, [KUBERNETES, web], [KUBERNETES]) == service_env([KUBERNETES, web])


def test_no_services_no_variables() -> None:
    assert pod_service_env({"spec": {}}, [], []) == {}


class Services:
    """What the agent's Service informer answers, counting the lists (one per computation)."""

    def __init__(self, *services: JSONDict) -> None:
        self.items = list(services)
        self.listed = 0

    def in_namespace(self, namespace: str) -> list[JSONDict]:
        self.listed += 1
        return [s for s in self.items if s["metadata"]["namespace"] == namespace]

    def master(self) -> list[JSONDict]:
        return [s for s in self.items if s["metadata"]["name"] == "kubernetes"]


def shop_pod(namespace: str = "shop", **spec: Any) -> JSONDict:
    return {"metadata": {"namespace": namespace}, "spec": spec}


def test_pods_of_one_namespace_share_one_read_only_copy() -> None:
    services = Services(KUBERNETES, svc("cart", "10.96.3.4", port(80), namespace="shop"))
    cache = ServiceEnvCache(services.in_namespace, services.master)
    one, two = cache.for_pod(shop_pod()), cache.for_pod(shop_pod())
    assert one is two and services.listed == 1
    assert one == pod_service_env(shop_pod(), services.in_namespace("shop"), services.master())
    with pytest.raises(TypeError):
        one["CART_SERVICE_HOST"] = "changed"  # type: ignore[index]
    other = cache.for_pod(shop_pod("web"))
    assert other is not one and "CART_SERVICE_HOST" not in other


def test_a_service_change_is_seen_by_the_next_pod_of_its_namespace_only() -> None:
    services = Services(KUBERNETES, svc("cart", "10.96.3.4", port(80), namespace="shop"))
    cache = ServiceEnvCache(services.in_namespace, services.master)
    shop, web = cache.for_pod(shop_pod()), cache.for_pod(shop_pod("web"))
    added = svc("pay", "10.96.3.5", port(80), namespace="shop")
    services.items.append(added)
    cache.service_changed(added)
    assert cache.for_pod(shop_pod())["PAY_SERVICE_HOST"] == "10.96.3.5"
    assert "PAY_SERVICE_HOST" not in shop  # what a running container got stays
    assert cache.for_pod(shop_pod("web")) is web


def test_the_kubernetes_service_changing_renews_every_namespace() -> None:
    services = Services(KUBERNETES)
    cache = ServiceEnvCache(services.in_namespace, services.master)
    shop, unlinked = cache.for_pod(shop_pod()), cache.for_pod(shop_pod(enableServiceLinks=False))
    moved = svc("kubernetes", "10.96.0.2", port(443, "https"))
    services.items = [moved]
    cache.service_changed(moved)
    assert cache.for_pod(shop_pod())["KUBERNETES_SERVICE_HOST"] == "10.96.0.2"
    assert cache.for_pod(shop_pod(enableServiceLinks=False)) is not unlinked
    assert shop["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


def test_pods_without_service_links_share_across_namespaces() -> None:
    services = Services(KUBERNETES, svc("cart", "10.96.3.4", port(80), namespace="shop"))
    cache = ServiceEnvCache(services.in_namespace, services.master)
    shop = cache.for_pod(shop_pod(enableServiceLinks=False))
    assert cache.for_pod(shop_pod("web", enableServiceLinks=False)) is shop
    assert set(shop) == set(service_env([KUBERNETES])) and services.listed == 0
