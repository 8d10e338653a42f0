"""What a pod's spec accepts after creation: the rules (pure), and on an embedded server."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.pod_update import pod_update_errors
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.errors import InvalidError
from reconciler.client.inprocess import InProcessClient

JSONDict = dict[str, Any]

SPEC: JSONDict = {
    "containers": [{"name": "app", "image": "web:1", "args": ["serve"]}],
    "initContainers": [{"name": "init", "image": "tool:1"}],
    "tolerations": [{"key": "a", "operator": "Exists"}],
    "schedulingGates": [{"name": "quota"}],
    "terminationGracePeriodSeconds": 30,
}


def changed(**edits: Any) -> JSONDict:
    spec = copy.deepcopy(SPEC)
    spec.update(edits)
    return spec


def messages(new: JSONDict, old: JSONDict = SPEC) -> list[str]:
    return [f"{c.field}: {c.message}" for c in pod_update_errors(old, new)]


@pytest.mark.parametrize(
    "new",
    [
        changed(),
        changed(containers=[{"name": "app", "image": "web:2", "args": ["serve"]}]),
        changed(initContainers=[{"name": "init", "image": "tool:2"}]),
        changed(activeDeadlineSeconds=60),
        changed(tolerations=[*SPEC["tolerations"], {"key": "b", "operator": "Exists"}]),
        changed(schedulingGates=[]),
        changed(nodeName="node-1"),  # binding a pod that has no node
    ],
)
def test_allowed_changes(new: JSONDict) -> None:
    assert pod_update_errors(SPEC, new) == []


def test_other_changes_are_refused_naming_what_changed() -> None:
    (message,) = messages(changed(containers=[{"name": "app", "image": "web:2", "args": ["x"]}]))
    assert message.startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
    )
    assert message.endswith("; changed: spec.containers[0].args[0]")
    (message,) = messages(changed(tolerations=[]))
    assert message.endswith("changed: spec.tolerations")
    (message,) = messages(changed(schedulingGates=[{"name": "quota"}, {"name": "more"}]))
    assert message.endswith("changed: spec.schedulingGates")
    bound = changed(nodeName="node-1")
    (message,) = messages(changed(nodeName="node-2"), bound)
    assert message.endswith("changed: spec.nodeName")
    (message,) = messages(changed(restartPolicy="Never", dnsPolicy="None"))
    assert message.endswith("changed: spec.dnsPolicy, spec.restartPolicy")


def test_the_deadline_may_be_set_or_lowered_not_raised_or_removed() -> None:
    with_deadline = changed(activeDeadlineSeconds=60)
    assert messages(changed(activeDeadlineSeconds=30), with_deadline) == []
    assert messages(changed(activeDeadlineSeconds=90), with_deadline) == [
        "spec.activeDeadlineSeconds: Invalid value: must be less than or equal to previous value"
    ]
    assert messages(changed(), with_deadline) == [
        "spec.activeDeadlineSeconds: Invalid value: must not update from a positive integer to "
        "nil value"
    ]


def test_a_negative_grace_period_may_become_one() -> None:
    negative = changed(terminationGracePeriodSeconds=-1)
    assert messages(changed(terminationGracePeriodSeconds=1), negative) == []
    assert messages(changed(terminationGracePeriodSeconds=2), negative) != []


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    yield InProcessClient(server.service)
    await server.stop()


async def test_the_api_refuses_a_forbidden_change_and_stores_nothing(
    client: InProcessClient,
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": copy.deepcopy(SPEC),
    }
    created = await client.create(pod)
    with pytest.raises(InvalidError) as caught:
        await client.patch(
            "v1",
            "Pod",
            "web",
            {"spec": {"restartPolicy": "Never"}, "metadata": {"labels": {"a": "b"}}},
            namespace="default",
        )
    assert str(caught.value).startswith('Pod "web" is invalid: spec: Forbidden: pod updates')
    stored = await client.get("v1", "Pod", "web", "default")
    assert stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    patched = await client.patch(
        "v1",
        "Pod",
        "web",
        {"spec": {"containers": [{"name": "app", "image": "web:2"}]}},
        namespace="default",
        patch_type="strategic",
    )
    assert patched["spec"]["containers"][0]["image"] == "web:2"


async def test_a_pod_stored_before_a_default_existed_can_still_be_relabelled(
    tmp_path: Path,
) -> None:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    try:
        client = InProcessClient(server.service)
        created = await client.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "old", "namespace": "default"},
                "spec": copy.deepcopy(SPEC),
            }
        )
        # as written by an older Recon, without a default the API now adds
        legacy = copy.deepcopy(created)
        del legacy["spec"]["dnsPolicy"]
        server.store.update("core/pods", "default", "old", legacy)
        relabelled = await client.patch(
            "v1", "Pod", "old", {"metadata": {"labels": {"tier": "web"}}}, namespace="default"
        )
        assert relabelled["metadata"]["labels"] == {"tier": "web"}
    finally:
        await server.stop()
