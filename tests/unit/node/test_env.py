"""A container's environment: the kubelet's order and overrides, Service variables shared."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from reconciler.node.containers import build_container_spec
from reconciler.node.env import Environment, container_env, expand

JSONDict = dict[str, Any]

POD: JSONDict = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1"}, "spec": {}}
SERVICES = MappingProxyType(
    {
        "CART_SERVICE_HOST": "10.96.0.7",
        "CART_SERVICE_PORT": "80",
        "CART_PORT": "tcp://10.96.0.7:80",
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    }
)


class Lookup:
    def configmap(self, namespace: str, name: str) -> JSONDict | None:
        if name == "cfg":
            return {"data": {"CART_PORT": "from-cm", "LEVEL": "debug", "bad key": "x"}}
        return None

    def secret(self, namespace: str, name: str) -> JSONDict | None:
        return None


def copied_env(container: JSONDict, services: Mapping[str, str]) -> dict[str, str]:
    """What the environment was when every container got its own dict (the reference)."""
    env: dict[str, str] = dict(services)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for key, value in (Lookup().configmap("shop", source["configMapRef"]["name"]) or {})[
            "data"
        ].items():
            if " " not in prefix + key:
                env[prefix + key] = value
    for var in container.get("env") or []:
        if "valueFrom" in var:
            env[var["name"]] = POD["metadata"]["name"]
        else:
            env[var["name"]] = expand(var.get("value", ""), env)
    return env


CONTAINERS: list[JSONDict] = [
    {"name": "plain"},
    {"name": "own", "env": [{"name": "MODE", "value": "fast"}]},
    {"name": "override", "env": [{"name": "CART_SERVICE_PORT", "value": "8080"}]},
    {"name": "refers", "env": [{"name": "URL", "value": "http://$(CART_SERVICE_HOST)/$(NONE)"}]},
    {
        "name": "layers",
        "envFrom": [
            {"configMapRef": {"name": "cfg"}},
            {"prefix": "P_", "configMapRef": {"name": "cfg"}},
        ],
        "env": [
            {"name": "LEVEL", "value": "info"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "CART_SERVICE_HOST", "value": "$(CART_PORT)-$(LEVEL)-$(POD)"},
            {"name": "ESCAPED", "value": "$$(LEVEL)"},
        ],
    },
]


@pytest.mark.parametrize("container", CONTAINERS, ids=[c["name"] for c in CONTAINERS])
def test_same_variables_values_and_order_as_one_dict_per_container(container: JSONDict) -> None:
    env = container_env(POD, container, Lookup(), SERVICES)
    want = copied_env(container, SERVICES)
    assert list(env.items()) == list(want.items())
    assert len(env) == len(want) and dict(env) == want
    assert all(key in env for key in want) and "ABSENT" not in env
    assert env.get("ABSENT") is None


def test_the_service_variables_are_shared_not_copied() -> None:
    one = container_env(POD, CONTAINERS[0], Lookup(), SERVICES)
    two = container_env(POD, CONTAINERS[4], Lookup(), SERVICES)
    assert isinstance(one, Environment) and isinstance(two, Environment)
    assert one.shared is SERVICES and two.shared is SERVICES
    assert dict(SERVICES)["CART_SERVICE_HOST"] == "10.96.0.7"  # overriding changed nothing


def test_without_service_variables() -> None:
    env = container_env(POD, CONTAINERS[1], Lookup())
    assert dict(env) == {"MODE": "fast"}


def spec_env(env: Mapping[str, str]) -> Mapping[str, str]:
    spec = build_container_spec(
        POD,
        {"name": "c", "image": "busybox"},
        env=env,
        volumes={},
        sandbox_id="s",
        restart_count=0,
        init=False,
        allow_privileged=False,
    )
    return spec.env


def test_the_container_spec_keeps_the_environment_and_copies_a_plain_dict() -> None:
    env = container_env(POD, CONTAINERS[1], Lookup(), SERVICES)
    assert spec_env(env) is env
    plain = {"A": "1"}
    kept = spec_env(plain)
    plain["A"] = "2"
    assert dict(kept) == {"A": "1"}
