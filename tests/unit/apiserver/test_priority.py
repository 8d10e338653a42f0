"""Pod priority on the API: the Priority admission plugin and PriorityClass's rules, on an
embedded server (the system classes are bootstrapped as on a cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.priority import admit_pod
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.errors import ForbiddenError, InvalidError
from reconciler.client.inprocess import InProcessClient

JSONDict = dict[str, Any]


def klass(name: str, value: int, **extra: Any) -> JSONDict:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        **extra,
    }


def pod(name: str, **spec: Any) -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    yield InProcessClient(server.service)
    await server.stop()


async def test_the_system_classes_exist_and_cannot_be_deleted(client: InProcessClient) -> None:
    listed = await client.list("scheduling.k8s.io/v1", "PriorityClass")
    values = {c["metadata"]["name"]: c["value"] for c in listed.items}
    assert values == {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}
    with pytest.raises(ForbiddenError) as caught:
        await client.delete("scheduling.k8s.io/v1", "PriorityClass", "system-node-critical")
    assert str(caught.value) == (
        'priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: this is a '
        "system priority class and cannot be deleted"
    )


async def test_a_pod_gets_its_class_value_and_policy(client: InProcessClient) -> None:
    created = await client.create(klass("high", 1000, preemptionPolicy="Never"))
    assert created["preemptionPolicy"] == "Never"
    assert (await client.create(klass("mid", 10)))["preemptionPolicy"] == "PreemptLowerPriority"
    spec = (await client.create(pod("a", priorityClassName="high")))["spec"]
    assert (spec["priority"], spec["preemptionPolicy"]) == (1000, "Never")
    # no class and no default: priority 0, as every pod on a cluster shows
    spec = (await client.create(pod("b")))["spec"]
    assert "priorityClassName" not in spec
    assert (spec["priority"], spec["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    # a pod may repeat what admission would compute, not contradict it
    assert (await client.create(pod("c", priorityClassName="mid", priority=10)))["spec"][
        "priority"
    ] == 10


async def test_unknown_class_and_contradicting_values_are_forbidden_and_store_nothing(
    client: InProcessClient,
) -> None:
    await client.create(klass("high", 1000))
    cases = [
        (pod("a", priorityClassName="nope"), "no PriorityClass with name nope was found"),
        (
            pod("a", priorityClassName="high", priority=5),
            "the integer value of priority (5) must not be provided in pod spec; priority "
            "admission controller computed 1000 from the given PriorityClass name",
        ),
        (
            pod("a", priorityClassName="high", preemptionPolicy="Never"),
            "the string value of PreemptionPolicy (Never) must not be provided in pod spec; "
            "priority admission controller computed PreemptLowerPriority from the given "
            "PriorityClass name",
        ),
        (
            pod("a", priority=7),
            "the integer value of priority (7) must not be provided in pod spec; priority "
            "admission controller computed 0 from the given PriorityClass name",
        ),
    ]
    for body, why in cases:
        with pytest.raises(ForbiddenError) as caught:
            await client.create(body)
        assert str(caught.value) == f'pods "a" is forbidden: {why}'
    assert (await client.list("v1", "Pod", "default")).items == []
    generated = pod("", priorityClassName="nope")
    generated["metadata"] = {"generateName": "web-", "namespace": "default"}
    with pytest.raises(ForbiddenError) as caught:
        await client.create(generated)
    assert str(caught.value).startswith('pods "web-" is forbidden: no PriorityClass')


async def test_the_global_default_applies_to_pods_naming_no_class(
    client: InProcessClient,
) -> None:
    await client.create(klass("normal", 100, globalDefault=True))
    spec = (await client.create(pod("a")))["spec"]
    assert (spec["priorityClassName"], spec["priority"]) == ("normal", 100)
    with pytest.raises(ForbiddenError) as caught:
        await client.create(klass("other", 5, globalDefault=True))
    assert str(caught.value) == (
        'priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass normal is '
        "already marked as default. Only one default can exist"
    )
    other = await client.create(klass("other", 5))
    other["globalDefault"] = True
    with pytest.raises(ForbiddenError):
        await client.update(other)
    # the default itself may be edited (its description), and stays the default
    normal = await client.get("scheduling.k8s.io/v1", "PriorityClass", "normal")
    normal["description"] = "for most pods"
    assert (await client.update(normal))["globalDefault"] is True


async def test_class_values_are_bounded_reserved_and_immutable(client: InProcessClient) -> None:
    with pytest.raises(InvalidError) as caught:
        await client.create(klass("huge", 1_000_000_001))
    assert "value: Forbidden: maximum allowed value of a user defined priority is 1000000000" in (
        str(caught.value)
    )
    await client.create(klass("top", 1_000_000_000))
    with pytest.raises(InvalidError) as caught:
        await client.create(klass("system-mine", 5))
    assert "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved" in (
        str(caught.value)
    )
    mid = await client.create(klass("mid", 10))
    mid["value"] = 11
    with pytest.raises(InvalidError) as caught:
        await client.update(mid)
    assert "value: Forbidden: may not be changed in an update." in str(caught.value)
    mid = await client.get("scheduling.k8s.io/v1", "PriorityClass", "mid")
    mid["preemptionPolicy"] = "Never"
    with pytest.raises(InvalidError) as caught:
        await client.update(mid)
    assert "preemptionPolicy: Invalid value: field is immutable" in str(caught.value)
    stored = await client.get("scheduling.k8s.io/v1", "PriorityClass", "mid")
    assert (stored["value"], stored["preemptionPolicy"]) == (10, "PreemptLowerPriority")
    # a user class is deleted like any object
    await client.delete("scheduling.k8s.io/v1", "PriorityClass", "mid")


async def test_a_replaced_pod_keeps_the_priority_admission_set(client: InProcessClient) -> None:
    await client.create(klass("high", 1000))
    created = await client.create(pod("a", priorityClassName="high"))
    replaced = pod("a", priorityClassName="high")  # the manifest as written
    replaced["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    spec = (await client.update(replaced))["spec"]
    assert (spec["priority"], spec["preemptionPolicy"]) == (1000, "PreemptLowerPriority")


def test_admission_picks_the_lowest_default_when_two_claim_it() -> None:
    body = pod("a")
    classes = {
        "x": klass("x", 50, globalDefault=True),
        "y": klass("y", 20, globalDefault=True),
        "z": klass("z", 10),
    }
    admit_pod(body, classes, "a")
    assert (body["spec"]["priorityClassName"], body["spec"]["priority"]) == ("y", 20)
