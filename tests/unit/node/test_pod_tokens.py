"""ServiceAccount tokens in pods: the admission's token volume (pure), the node's token
cache (re-issued at 80 % of a token's life), the projected `serviceAccountToken` files,
and the `kube-root-ca.crt` publisher against an in-process API server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.sa_admission import MOUNT_PATH, mount_service_account_token
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import ManualClock
from reconciler.controllers.base import ControllerManager
from reconciler.controllers.root_ca import ROOT_CA_CONFIGMAP, RootCaPublisher
from reconciler.node.pod_tokens import PodTokens, TokenUnavailableError
from reconciler.node.volume_files import VolumeSourceError, has_token_volume, volume_files

JSONDict = dict[str, Any]


def pod(**spec: Any) -> JSONDict:
    return {
        "metadata": {"name": "p", "namespace": "shop", "uid": "u1"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], **spec},
    }


def test_admission_mounts_the_token_volume_into_every_container() -> None:
    made = pod(initContainers=[{"name": "init"}])
    mount_service_account_token(made, suffix="x2k9q")
    spec = made["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    (volume,) = spec["volumes"]
    assert volume["name"] == "kube-api-access-x2k9q"
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["path"] == "namespace"
    for container in spec["initContainers"] + spec["containers"]:
        assert container["volumeMounts"] == [
            {"name": "kube-api-access-x2k9q", "mountPath": MOUNT_PATH, "readOnly": True}
        ]
    assert has_token_volume(made)


def test_admission_respects_opt_out_and_own_mounts() -> None:
    off = pod(automountServiceAccountToken=False, serviceAccountName="builder")
    mount_service_account_token(off)
    assert "volumes" not in off["spec"] and off["spec"]["serviceAccount"] == "builder"
    own = pod()
    own["spec"]["containers"][0]["volumeMounts"] = [{"name": "mine", "mountPath": MOUNT_PATH}]
    mount_service_account_token(own, suffix="abcde")
    assert own["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "mine", "mountPath": MOUNT_PATH}
    ]
    assert own["spec"]["containers"][1]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


def test_tokens_are_reused_until_80_percent_of_their_life() -> None:
    clock = ManualClock()
    issued: list[int] = []

    def issue(p: JSONDict, audience: str | None, seconds: int) -> tuple[str, float]:
        issued.append(seconds)
        return f"token-{len(issued)}", clock.now().timestamp() + seconds

    tokens = PodTokens(issue, clock)
    subject = pod()
    assert tokens.token(subject, None, 3607) == "token-1"
    clock.advance(2800)  # < 80 % of 3607 s
    assert not tokens.due("u1")
    assert tokens.token(subject, None, 3607) == "token-1"
    clock.advance(100)  # past 2885.6 s
    assert tokens.due("u1") and not tokens.due("other")
    assert tokens.token(subject, None, 3607) == "token-2"
    assert not tokens.due("u1")
    assert tokens.token(subject, "vault", 100) == "token-3"  # at least 600 s
    assert issued[-1] == 600
    tokens.forget("u1")
    assert tokens.token(subject, None, 3607) == "token-4"


def test_projected_token_files() -> None:
    made = pod()
    mount_service_account_token(made, suffix="aaaaa")
    (volume,) = made["spec"]["volumes"]

    class Lookup:
        def configmap(self, namespace: str, name: str) -> JSONDict | None:
            return {"data": {"ca.crt": "CA"}} if name == "kube-root-ca.crt" else None

        def secret(self, namespace: str, name: str) -> JSONDict | None:
            return None

    files = volume_files(made, volume, Lookup(), tokens=lambda p, a, s: f"jwt-{s}")
    assert {path: f.data for path, f in files.items()} == {
        "token": b"jwt-3607",
        "ca.crt": b"CA",
        "namespace": b"shop",
    }
    with pytest.raises(VolumeSourceError, match="cannot issue tokens"):
        volume_files(made, volume, Lookup())

    def refuse(p: JSONDict, a: str | None, s: int) -> str:
        raise TokenUnavailableError('serviceaccount "shop/default" not found')

    with pytest.raises(VolumeSourceError, match='serviceaccount "shop/default" not found'):
        volume_files(made, volume, Lookup(), tokens=refuse)


async def test_root_ca_is_published_in_every_namespace(tmp_path: Path) -> None:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    clock = ManualClock()
    client = InProcessClient(server.service)
    manager = ControllerManager(client, clock)
    manager.add(RootCaPublisher(client, clock, lambda: "PEM", resync=30))
    await manager.start()
    try:
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})

        async def published(namespace: str) -> JSONDict | None:
            for _ in range(200):
                try:
                    found = await client.get("v1", "ConfigMap", ROOT_CA_CONFIGMAP, namespace)
                except Exception:
                    found = None
                if found is not None and found.get("data") == {"ca.crt": "PEM"}:
                    return found
                await asyncio.sleep(0.01)
            return None

        assert await published("shop") is not None
        assert await published("default") is not None
        edited = await client.get("v1", "ConfigMap", ROOT_CA_CONFIGMAP, "shop")
        edited["data"] = {"ca.crt": "forged"}
        await client.update(edited)
        clock.advance(timedelta(seconds=31).total_seconds())
        assert await published("shop") is not None  # made right on the next look
    finally:
        await manager.stop()
        await server.stop()
