"""The ServiceAccount admission on an embedded server: a pod naming a ServiceAccount that
does not exist is refused, and the account's own `automountServiceAccountToken` counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.sa_admission import MOUNT_PATH
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.errors import ForbiddenError
from reconciler.client.inprocess import InProcessClient

JSONDict = dict[str, Any]


def pod(name: str, **spec: Any) -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def account(name: str, **extra: Any) -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": "default"},
        **extra,
    }


def mounted(created: JSONDict) -> bool:
    mounts = created["spec"]["containers"][0].get("volumeMounts") or []
    return any(m["mountPath"] == MOUNT_PATH for m in mounts)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0, service_account_tokens=True))
    await server.start()
    yield InProcessClient(server.service)
    await server.stop()


async def test_a_pod_naming_a_missing_account_is_refused_and_not_stored(
    client: InProcessClient,
) -> None:
    with pytest.raises(ForbiddenError) as caught:
        await client.create(pod("web", serviceAccountName="builder"))
    assert str(caught.value) == (
        'pods "web" is forbidden: error looking up service account default/builder: '
        'serviceaccount "builder" not found'
    )
    assert (await client.list("v1", "Pod", "default")).items == []
    await client.create(account("builder"))
    created = await client.create(pod("web", serviceAccountName="builder"))
    assert created["spec"]["serviceAccountName"] == "builder" and mounted(created)
    # `default` is being created by its controller in a new namespace: not refused
    assert (await client.create(pod("plain")))["spec"]["serviceAccountName"] == "default"


async def test_the_accounts_automount_setting_applies_unless_the_pod_says(
    client: InProcessClient,
) -> None:
    await client.create(account("quiet", automountServiceAccountToken=False))
    assert not mounted(await client.create(pod("a", serviceAccountName="quiet")))
    assert mounted(
        await client.create(pod("b", serviceAccountName="quiet", automountServiceAccountToken=True))
    )
    await client.create(account("loud", automountServiceAccountToken=True))
    assert not mounted(
        await client.create(pod("c", serviceAccountName="loud", automountServiceAccountToken=False))
    )
