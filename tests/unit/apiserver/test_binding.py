"""`pods/binding`: a custom scheduler assigns a pod; assigned pods and bad Bindings are
refused, dry runs write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.binding import Bindings, binding_target
from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.resources import ResourceType
from reconciler.apiserver.server import ApiServer, ServerOptions


def binding(node: str = "n1", name: str = "p", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, **meta},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


def test_the_binding_must_name_the_pod_and_a_node() -> None:
    assert binding_target(binding(annotations={"by": "mine"}), "p") == ("n1", {"by": "mine"})
    with pytest.raises(ApiError, match="name in URL does not match name in Binding object"):
        binding_target(binding(name="q"), "p")
    wrong = binding()
    wrong["target"] = {"kind": "Pod"}
    with pytest.raises(ApiError) as invalid:
        binding_target(wrong, "p")
    assert invalid.value.code == 422
    assert "target.kind: Unsupported value: 'Pod': must be empty or 'Node'" in str(
        invalid.value.message
    )
    assert "target.name: Required value" in str(invalid.value.message)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    api = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    yield api
    api.store.close()


async def test_a_pod_is_bound_once(server: ApiServer) -> None:
    pods = server.registry.lookup("", "v1", "pods")
    assert isinstance(pods, ResourceType)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"schedulerName": "mine", "containers": [{"name": "c", "image": "x"}]},
    }
    namespaces = server.registry.lookup("", "v1", "namespaces")
    assert isinstance(namespaces, ResourceType)
    server.service.create(namespaces, "", {"metadata": {"name": "default"}})
    server.service.create(pods, "default", body)
    bindings = Bindings(server.service, pods, server.clock)
    bindings.bind("default", "p", binding(), dry_run=True)
    assert not server.service.get(pods, "default", "p")["spec"].get("nodeName")
    answer = bindings.bind("default", "p", binding(annotations={"by": "mine"}), dry_run=False)
    assert answer["status"] == "Success" and answer["code"] == 201
    pod = server.service.get(pods, "default", "p")
    assert pod["spec"]["nodeName"] == "n1"
    assert pod["metadata"]["annotations"] == {"by": "mine"}
    assert [c["type"] for c in pod["status"]["conditions"]] == ["PodScheduled"]
    with pytest.raises(ApiError) as taken:
        bindings.bind("default", "p", binding("n2"), dry_run=False)
    assert taken.value.code == 409
    assert taken.value.message == (
        'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"'
    )
