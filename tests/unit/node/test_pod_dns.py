"""A pod's DNS settings from `dnsPolicy` and `dnsConfig`, as the kubelet writes resolv.conf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.node.pod_dns import HostResolvConf, PodDns, pod_dns, read_host_resolv_conf

CLUSTER = ("10.111.0.1", "192.0.2.53")
HOST = HostResolvConf(("192.0.2.53",), ("corp.example",), ("timeout:2",))
SEARCH = ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local")


def dns(**spec: Any) -> PodDns:
    return pod_dns(spec, "shop", CLUSTER, HOST)


def test_cluster_first_is_the_cluster_dns_with_the_namespace_search_list() -> None:
    want = PodDns(CLUSTER, (*SEARCH, "corp.example"), ("ndots:5",), cluster=True)
    assert dns() == want
    assert dns(dnsPolicy="ClusterFirst") == want
    # ClusterFirstWithHostNet off the host's network is ClusterFirst
    assert dns(dnsPolicy="ClusterFirstWithHostNet") == want


def test_on_the_host_network_cluster_first_falls_back_to_the_node() -> None:
    assert dns(hostNetwork=True) == PodDns()
    assert dns(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet").cluster
    assert dns(dnsPolicy="Default") == PodDns()


def test_dns_config_is_appended_and_its_options_win() -> None:
    config = {
        "nameservers": ["1.1.1.1", "10.111.0.1"],
        "searches": ["extra.example", "cluster.local"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
    }
    got = dns(dnsConfig=config)
    assert got.servers == (*CLUSTER, "1.1.1.1")
    assert got.searches == (*SEARCH, "corp.example", "extra.example")
    assert got.options == ("ndots:2", "edns0")
    # Default with a dnsConfig: the node's settings, then the pod's
    assert dns(dnsPolicy="Default", dnsConfig=config) == PodDns(
        ("192.0.2.53", "1.1.1.1", "10.111.0.1"),
        ("corp.example", "extra.example", "cluster.local"),
        ("timeout:2", "ndots:2", "edns0"),
    )


def test_none_is_only_the_dns_config() -> None:
    config = {"nameservers": ["1.1.1.1"], "searches": ["a.example"], "options": [{"name": "x"}]}
    assert dns(dnsPolicy="None", dnsConfig=config) == PodDns(("1.1.1.1",), ("a.example",), ("x",))


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (
            "nameserver 127.0.0.53\nsearch a.example b.example\noptions edns0 trust-ad\n",
            HostResolvConf(("192.0.2.1",), ("a.example", "b.example"), ("edns0", "trust-ad")),
        ),
        (
            "# only a comment\ndomain d.example\nsearch s.example\n",
            HostResolvConf(("192.0.2.1",), ("s.example",)),
        ),
    ],
)
def test_the_nodes_search_list_and_options(tmp_path: Path, text: str, want: HostResolvConf) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(text)
    assert read_host_resolv_conf(("192.0.2.1",), conf) == want
    assert read_host_resolv_conf((), tmp_path / "missing") == HostResolvConf()
