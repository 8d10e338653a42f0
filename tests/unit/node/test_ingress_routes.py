"""The Ingress routing table: which Ingresses are served, and which backend answers a host
and path (pure; objects written by hand as the API would hold them)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.node.ingress_routes import (
    CONTROLLER,
    IngressTable,
    plan_ingresses,
    served,
)
from reconciler.node.service_routes import address_status_patch

JSONDict = dict[str, Any]


def pod(name: str, host_port: int, ready: bool = True) -> JSONDict:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "annotations": {"recon.dev/published-ports": json.dumps({"8080/TCP": host_port})},
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def service(name: str, port: int = 80, port_name: str = "http") -> JSONDict:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": port_name, "port": port, "targetPort": 8080}]},
    }


def endpoints(name: str, *pod_names: str, port_name: str = "http") -> JSONDict:
    addresses = [
        {"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": p, "uid": f"uid-{p}"}}
        for p in pod_names
    ]
    return {
        "metadata": {"name": name, "namespace": "default"},
        "subsets": [{"addresses": addresses, "ports": [{"name": port_name, "port": 8080}]}],
    }


def backend(name: str, number: int | None = 80, port_name: str | None = None) -> JSONDict:
    port: JSONDict = {"number": number} if number is not None else {"name": port_name}
    return {"service": {"name": name, "port": port}}


def path(value: str, service_name: str, path_type: str = "Prefix") -> JSONDict:
    return {"path": value, "pathType": path_type, "backend": backend(service_name)}


def ingress(
    name: str,
    rules: list[JSONDict] | None = None,
    *,
    created: str = "2026-01-01T00:00:00Z",
    annotations: JSONDict | None = None,
    **spec: Any,
) -> JSONDict:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "creationTimestamp": created,
            "annotations": annotations or {},
        },
        "spec": {"rules": rules or [], **spec},
    }


class World:
    """The caches the planner reads: services a/b/c/d with one pod each (host ports
    1001..1004)."""

    def __init__(self) -> None:
        self.classes: dict[str, JSONDict] = {}
        self.services = {n: service(n) for n in "abcd"}
        self.pods = {f"p{n}": pod(f"p{n}", 1000 + i) for i, n in enumerate("abcd", 1)}
        self.endpoints = {n: endpoints(n, f"p{n}") for n in "abcd"}

    def plan(self, *ingresses: JSONDict) -> IngressTable:
        return plan_ingresses(
            ingresses,
            lambda _ns, name: self.classes.get(name),
            lambda _ns, name: self.services.get(name),
            lambda _ns, name: self.endpoints.get(name),
            lambda _ns, name: self.pods.get(name),
        )


def routed(table: IngressTable, host: str, request_path: str) -> str | None:
    match = table.match(host, request_path)
    return None if match is None else match.route.backend.service


@pytest.fixture
def world() -> World:
    return World()


def test_host_rules_exact_then_wildcard_then_any(world: World) -> None:
    table = world.plan(
        ingress(
            "i",
            [
                {"host": "shop.example.com", "http": {"paths": [path("/", "a")]}},
                {"host": "*.example.com", "http": {"paths": [path("/", "b")]}},
                {"http": {"paths": [path("/", "c")]}},
            ],
        )
    )
    assert routed(table, "shop.example.com", "/") == "a"
    assert routed(table, "SHOP.example.com:8080", "/x") == "a"  # case and port ignored
    assert routed(table, "blog.example.com", "/") == "b"
    assert routed(table, "a.b.example.com", "/") == "c"  # a wildcard covers one label
    assert routed(table, "example.com", "/") == "c"
    assert routed(table, "127.0.0.1", "/") == "c"


def test_longest_path_wins_and_exact_beats_prefix(world: World) -> None:
    table = world.plan(
        ingress(
            "i",
            [
                {
                    "http": {
                        "paths": [
                            path("/", "a"),
                            path("/api", "b"),
                            path("/api", "c", "Exact"),
                            path("/api/v2/", "d"),
                        ]
                    }
                }
            ],
        )
    )
    assert routed(table, "h", "/api") == "c"
    assert routed(table, "h", "/api/") == "b"  # Exact does not match a trailing slash
    assert routed(table, "h", "/api/users") == "b"
    assert routed(table, "h", "/apix") == "a"  # whole path elements only
    assert routed(table, "h", "/api/v2") == "d"  # "/api/v2/" matches "/api/v2"
    assert routed(table, "h", "/api/v2/x") == "d"
    assert routed(table, "h", "/other") == "a"


def test_a_host_group_without_a_matching_path_uses_the_default_backend(world: World) -> None:
    rules = [{"host": "x.test", "http": {"paths": [path("/app", "a")]}}]
    table = world.plan(ingress("i", rules, defaultBackend=backend("d")))
    assert routed(table, "x.test", "/app") == "a"
    assert routed(table, "x.test", "/other") == "d"
    assert routed(table, "y.test", "/") == "d"
    assert world.plan(ingress("i", rules)).match("x.test", "/other") is None


def test_the_older_ingress_keeps_a_contested_path(world: World) -> None:
    older = ingress("old", [{"http": {"paths": [path("/", "a")]}}], created="2026-01-01T00:00:00Z")
    newer = ingress("new", [{"http": {"paths": [path("/", "b")]}}], created="2026-02-01T00:00:00Z")
    assert routed(world.plan(newer, older), "h", "/") == "a"
    assert world.plan(newer, older).ingresses == ("default/old", "default/new")


def test_classes_served_here(world: World) -> None:
    world.classes["recon"] = {"metadata": {"name": "recon"}, "spec": {"controller": CONTROLLER}}
    world.classes["other"] = {"metadata": {"name": "other"}, "spec": {"controller": "x.io/y"}}

    def classes(_ns: str, name: str) -> JSONDict | None:
        return world.classes.get(name)

    assert served(ingress("none"), classes)
    assert served(ingress("ours", ingressClassName="recon"), classes)
    assert served(ingress("unknown", ingressClassName="nginx"), classes)
    assert not served(ingress("theirs", ingressClassName="other"), classes)
    legacy = ingress("legacy", annotations={"kubernetes.io/ingress.class": "other"})
    assert not served(legacy, classes)
    deleting = ingress("gone")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not served(deleting, classes)
    theirs = ingress("theirs", [{"http": {"paths": [path("/", "a")]}}], ingressClassName="other")
    assert world.plan(theirs).match("h", "/") is None


def test_backends_are_ready_pods_published_ports(world: World) -> None:
    world.pods["pa2"] = pod("pa2", 2001)
    world.pods["pa3"] = pod("pa3", 2002, ready=False)  # unready since the Endpoints
    world.endpoints["a"] = endpoints("a", "pa", "pa2", "pa3")
    table = world.plan(ingress("i", [{"http": {"paths": [path("/", "a")]}}]))
    found = table.match("h", "/")
    assert found is not None
    assert found.route.backend.backends == (1001, 2001)
    assert found.route.backend.problem == ""


def test_backend_problems_are_named(world: World) -> None:
    del world.endpoints["b"]
    table = world.plan(
        ingress(
            "i",
            [
                {
                    "http": {
                        "paths": [
                            path("/missing", "nope"),
                            path("/unready", "b"),
                            {"path": "/port", "pathType": "Prefix", "backend": backend("a", 81)},
                            {
                                "path": "/named",
                                "pathType": "Prefix",
                                "backend": backend("a", None, "http"),
                            },
                        ]
                    }
                }
            ],
        )
    )

    def problem(request_path: str) -> str:
        found = table.match("h", request_path)
        assert found is not None
        return found.route.backend.problem

    assert problem("/missing") == 'service "default/nope" not found'
    assert problem("/unready") == 'no ready endpoints for service "default/b"'
    assert problem("/port") == 'service "default/a" has no TCP port 81'
    assert problem("/named") == ""


def test_rewrite_target_uses_the_path_as_a_regex(world: World) -> None:
    table = world.plan(
        ingress(
            "i",
            [{"http": {"paths": [path("/app(/|$)(.*)", "a", "ImplementationSpecific")]}}],
            annotations={"nginx.ingress.kubernetes.io/rewrite-target": "/$2"},
        ),
        ingress(
            "j",
            [{"host": "r.test", "http": {"paths": [path("/old", "b")]}}],
            annotations={"nginx.ingress.kubernetes.io/rewrite-target": "/"},
        ),
    )
    found = table.match("h", "/app/users/7")
    assert found is not None and found.upstream_path == "/users/7"
    found = table.match("h", "/APP")
    assert found is not None and found.upstream_path == "/"
    assert table.match("h", "/application") is None
    found = table.match("r.test", "/old/page")
    assert found is not None and found.upstream_path == "/"


def test_use_regex_without_rewrite_keeps_the_path(world: World) -> None:
    table = world.plan(
        ingress(
            "i",
            [{"http": {"paths": [path("/v[0-9]+/items", "a", "ImplementationSpecific")]}}],
            annotations={"nginx.ingress.kubernetes.io/use-regex": "true"},
        )
    )
    found = table.match("h", "/v12/items/3")
    assert found is not None and found.upstream_path == "/v12/items/3"
    assert table.match("h", "/vx/items") is None


def test_tls_hosts_name_their_secret_and_redirect_flag(world: World) -> None:
    table = world.plan(
        ingress(
            "i",
            [{"host": "s.test", "http": {"paths": [path("/", "a")]}}],
            tls=[{"hosts": ["s.test", "*.w.test"], "secretName": "cert"}],
        ),
        ingress(
            "plain",
            [{"host": "p.test", "http": {"paths": [path("/", "b")]}}],
            annotations={"nginx.ingress.kubernetes.io/ssl-redirect": "false"},
        ),
    )
    assert table.tls_secret("S.test:443") == ("default", "cert")
    assert table.tls_secret("x.w.test") == ("default", "cert")
    assert table.tls_secret("p.test") is None
    found = table.match("s.test", "/")
    assert found is not None and found.route.ssl_redirect
    found = table.match("p.test", "/")
    assert found is not None and not found.route.ssl_redirect


def test_status_patch_shows_the_host_while_served() -> None:
    plain = ingress("i")
    assert address_status_patch(plain, "127.0.0.1", True) == {
        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    }
    shown = {**plain, "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}
    assert address_status_patch(shown, "127.0.0.1", True) is None
    assert address_status_patch(shown, "127.0.0.1", False) == {
        "status": {"loadBalancer": {"ingress": None}}
    }
    assert address_status_patch(plain, "127.0.0.1", False) is None
