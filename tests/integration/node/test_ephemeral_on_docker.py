"""Ephemeral containers (`kubectl debug`) on a real dockerd: a debug container added to a
running pod shares its network (reaches the app on localhost) and its target's processes
(`ps` shows them), answers exec and attach, is reported in `ephemeralContainerStatuses`,
survives an agent restart as the same container and is never restarted once it exits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.node.streams import NodeStreams
from reconciler.runtime.base import ContainerStatus
from tests.integration.node.docker_node import BUSYBOX, DockerNode, docker_node, running_and_ready
from tests.integration.runtime.conftest import requires_docker

pytestmark = [pytest.mark.integration, requires_docker]

JSONDict = dict[str, Any]

APP = (
    "mkdir -p /tmp/www && echo hello from the app > /tmp/www/index.html && "
    "httpd -p 127.0.0.1:8080 -h /tmp/www && exec sleep 3601"
)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[DockerNode]:
    async for n in docker_node(tmp_path):
        yield n


def busybox(name: str, command: list[str]) -> JSONDict:
    """The local image, never pulled (there is no registry to pull it from)."""
    return {"name": name, "image": BUSYBOX, "imagePullPolicy": "IfNotPresent", "command": command}


def ephemeral_status(pod: JSONDict, name: str) -> JSONDict:
    for status in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if status["name"] == name:
            return dict(status)
    return {}


def in_state(name: str, state: str) -> Any:
    return lambda pod: state in ephemeral_status(pod, name).get("state", {})


async def debug(node: DockerNode, pod: str, container: JSONDict) -> None:
    await node.client.patch(
        "v1",
        "Pod",
        pod,
        {"spec": {"ephemeralContainers": [container]}},
        namespace="default",
        patch_type="strategic",
        subresource="ephemeralcontainers",
    )


async def test_a_debug_container_sees_the_targets_processes_and_network(
    node: DockerNode,
) -> None:
    app = busybox("app", ["sh", "-c", APP])
    side = busybox("side", ["sleep", "3602"])
    await node.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [app, side]},
        }
    )
    await node.wait_pod("web", running_and_ready, what="web running")
    script = "ps; echo ---; wget -qO- http://127.0.0.1:8080/; exec sleep 3600"
    await debug(
        node,
        "web",
        {**busybox("debugger", ["sh", "-c", script]), "targetContainerName": "app"},
    )
    pod = await node.wait_pod("web", in_state("debugger", "running"), what="debugger running")
    [record] = await node.records(pod, "debugger")
    status = ephemeral_status(pod, "debugger")
    assert status["containerID"] == f"docker://{record.id}"
    assert status["imageID"].startswith("sha256:") and status["ready"] is False
    assert status["restartCount"] == 0 and status["image"] == BUSYBOX

    async def output() -> str | None:
        text = await node.logs(record)
        return text if "hello from the app" in text else None

    text = await node.eventually(output, 30, "the debugger's output")
    processes, _, fetched = text.partition("---\n")
    assert "sleep 3601" in processes and "httpd" in processes  # the target's processes
    assert "sleep 3602" not in processes  # not the pod's other container's
    assert fetched == "hello from the app\n"  # the pod's network: the app on localhost
    code, seen = await node.exec(pod, "debugger", "ps")
    assert code == 0 and "sleep 3601" in seen and "sleep 3600" in seen
    # The pod is as it was: running, ready, its containers untouched.
    pod = await node.pod("web")
    assert running_and_ready(pod)
    assert [s["restartCount"] for s in pod["status"]["containerStatuses"]] == [0, 0]

    # A restarted agent re-adopts the debug container rather than starting another.
    await node.stop_agent()
    await node.start_agent()
    await asyncio.sleep(1)
    pod = await node.wait_pod("web", in_state("debugger", "running"))
    assert [r.id for r in await node.records(pod, "debugger")] == [record.id]
    assert ephemeral_status(pod, "debugger")["containerID"] == f"docker://{record.id}"


async def test_attach_gives_a_debug_shell_that_is_not_restarted(node: DockerNode) -> None:
    app = busybox("app", ["sleep", "3601"])
    spec = {"terminationGracePeriodSeconds": 1, "containers": [app]}
    await node.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sh"}, "spec": spec})
    await node.wait_pod("sh", running_and_ready)
    shell = {**busybox("shell", ["sh"]), "stdin": True}
    await debug(node, "sh", {**shell, "targetContainerName": "app"})
    pod = await node.wait_pod("sh", in_state("shell", "running"))
    assert node.runtime is not None
    session = await NodeStreams(node.runtime).attach(pod, "shell", stdin=True, tty=False)
    output = b""
    try:
        await session.write(b"echo hi from $(hostname); ps | grep -c '[s]leep 3601'; exit 4\n")
        await session.close_stdin()
        async with asyncio.timeout(20):
            while (chunk := await session.read()) is not None:
                output += chunk[1]
    finally:
        await session.close()
    assert output == b"hi from sh\n1\n"  # the pod's hostname, the target's process
    pod = await node.wait_pod("sh", in_state("shell", "terminated"))
    terminated = ephemeral_status(pod, "shell")["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (4, "Error")
    await asyncio.sleep(3)
    records = await node.records(await node.pod("sh"), "shell")
    assert [r.status for r in records] == [ContainerStatus.EXITED]
