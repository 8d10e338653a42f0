"""Ephemeral containers (`kubectl debug`) and attach on the node agent, in-memory runtime:
added through `pods/ephemeralcontainers`, started once in the pod's sandbox (in their
target's PID namespace), reported, never restarted, re-adopted after an agent restart, and
reachable by `kubectl attach` and `kubectl logs` through the node's streams."""

from __future__ import annotations

import asyncio
from typing import Any

from reconciler.apiserver.podio import AttachStream, LogOptions, PodStreamError
from reconciler.node.streams import NodeStreams
from reconciler.runtime.base import SANDBOX_ID_LABEL, ContainerState, ContainerStatus
from tests.unit.node.conftest import NodeHarness, condition

JSONDict = dict[str, Any]


def running(pod: JSONDict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and condition(pod, "Ready") == "True"


def ephemeral_status(pod: JSONDict, name: str) -> JSONDict:
    for status in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if status["name"] == name:
            return dict(status)
    return {}


def state_of(name: str, state: str) -> Any:
    def check(pod: JSONDict) -> bool:
        return state in ephemeral_status(pod, name).get("state", {})

    return check


async def debug(node: NodeHarness, pod: str, **container: Any) -> JSONDict:
    """Add an ephemeral container the way `kubectl debug` does (a strategic merge patch of
    the subresource)."""
    return await node.client.patch(
        "v1",
        "Pod",
        pod,
        {"spec": {"ephemeralContainers": [container]}},
        namespace="default",
        patch_type="strategic",
        subresource="ephemeralcontainers",
    )


async def record(node: NodeHarness, pod: JSONDict, name: str) -> ContainerState:
    [found] = await node.containers(pod, name)
    return found


async def test_an_ephemeral_container_joins_the_running_pod(node: NodeHarness) -> None:
    await node.create_pod(
        "web",
        {
            "containers": [
                {"name": "app", "image": "fake/script", "args": ["listen:8080=hello", "wait"]}
            ]
        },
    )
    pod = await node.wait_pod("web", running, what="web running")
    app = await record(node, pod, "app")
    await debug(
        node,
        "web",
        name="debugger",
        image="fake/script",
        args=["get:http://127.0.0.1:8080/", "wait"],
        targetContainerName="app",
        stdin=True,
        tty=True,
    )
    pod = await node.wait_pod("web", state_of("debugger", "running"), what="debugger running")
    status = ephemeral_status(pod, "debugger")
    debugger = await record(node, pod, "debugger")
    assert status == {
        "name": "debugger",
        "image": "fake/script",
        "imageID": debugger.image_id,
        "containerID": f"memory://{debugger.id}",
        "ready": False,
        "restartCount": 0,
        "state": {"running": {"startedAt": status["state"]["running"]["startedAt"]}},
        "lastState": {},
    }
    # In the pod's sandbox (its network: the app answers on localhost), in the app's PID
    # namespace, with the stdin and terminal it asked for, labelled for re-adoption.
    assert debugger.labels[SANDBOX_ID_LABEL] == app.labels[SANDBOX_ID_LABEL]
    assert debugger.labels["recon.dev/ephemeral-container"] == "true"
    assert debugger.pid_of == app.id
    spec = node.runtime._get(debugger.id).spec
    assert spec is not None and spec.stdin and spec.tty and not spec.stdin_once

    async def fetched() -> bool:
        return b"hello" in b"".join([c async for c in node.runtime.logs(debugger.id)])

    await node.eventually(fetched, what="the debugger reached the app on localhost")
    # The pod itself is as it was: still running and ready, the app untouched.
    assert running(pod) and (await record(node, pod, "app")).id == app.id
    assert [c["name"] for c in pod["status"]["containerStatuses"]] == ["app"]


async def test_an_exited_ephemeral_container_is_never_restarted(node: NodeHarness) -> None:
    await node.create_pod("web", {"containers": [{"name": "app", "image": "fake/pause"}]})
    await node.wait_pod("web", running)
    await debug(node, "web", name="oneshot", image="fake/exit:3")
    pod = await node.wait_pod("web", state_of("oneshot", "terminated"), what="oneshot exited")
    terminated = ephemeral_status(pod, "oneshot")["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    await node.advance(400, step=20)  # well past any back-off
    await node.settle()
    pod = await node.pod("web")
    assert len(await node.containers(pod, "oneshot")) == 1
    assert ephemeral_status(pod, "oneshot")["restartCount"] == 0
    assert running(pod)  # an ephemeral container's exit is not the pod's


async def test_agent_restart_readopts_the_ephemeral_container(node: NodeHarness) -> None:
    await node.create_pod("web", {"containers": [{"name": "app", "image": "fake/pause"}]})
    await node.wait_pod("web", running)
    await debug(node, "web", name="debugger", image="fake/pause")
    pod = await node.wait_pod("web", state_of("debugger", "running"))
    before = await record(node, pod, "debugger")
    await node.stop_agent()
    await node.start_agent()
    await node.settle()
    await node.advance(2)
    pod = await node.wait_pod("web", state_of("debugger", "running"))
    assert [r.id for r in await node.containers(pod, "debugger")] == [before.id]
    assert ephemeral_status(pod, "debugger")["containerID"] == f"memory://{before.id}"


async def test_a_target_that_is_not_running_holds_the_start(node: NodeHarness) -> None:
    """The kubelet cannot join the PID namespace of a container that is not running."""
    await node.create_pod(
        "web",
        {
            "initContainers": [{"name": "setup", "image": "fake/exit"}],
            "containers": [{"name": "app", "image": "fake/pause"}],
        },
    )
    await node.wait_pod("web", running)
    await debug(node, "web", name="late", image="fake/pause", targetContainerName="setup")

    def held(pod: JSONDict) -> bool:
        waiting = ephemeral_status(pod, "late").get("state", {}).get("waiting", {})
        return waiting.get("reason") == "CreateContainerConfigError"

    pod = await node.wait_pod("web", held, what="the start held")
    message = ephemeral_status(pod, "late")["state"]["waiting"]["message"]
    assert message == "unable to find target container setup: it is not running"
    assert await node.containers(pod, "late") == []


async def test_attach_and_logs_reach_app_and_ephemeral_containers(node: NodeHarness) -> None:
    await node.create_pod(
        "shell",
        {
            "containers": [
                {"name": "app", "image": "fake/cat", "stdin": True, "stdinOnce": True},
            ],
            "restartPolicy": "Never",
        },
    )
    pod = await node.wait_pod("shell", running)
    streams = NodeStreams(node.runtime)
    await debug(node, "shell", name="debugger", image="fake/cat", stdin=True)
    pod = await node.wait_pod("shell", state_of("debugger", "running"))
    await _echo(await streams.attach(pod, "debugger", stdin=True, tty=False), b"to debugger\n")
    logs = await streams.logs(pod, LogOptions(container="debugger"))
    assert b"".join([chunk async for chunk in logs]) == b"to debugger\n"
    # Without stdinOnce the debugger's stdin stays open for the next attach: still running.
    assert (await record(node, pod, "debugger")).status == ContainerStatus.RUNNING
    await _echo(await streams.attach(pod, "app", stdin=True, tty=False), b"to the app\n")
    # stdinOnce: the app's stdin ended with the session that wrote to it, and so did `cat`.
    pod = await node.wait_pod("shell", lambda p: p["status"]["phase"] == "Succeeded")
    try:
        await streams.attach(pod, "app", stdin=True, tty=False)
    except PodStreamError as e:
        assert (e.status, e.message) == (400, 'container not found ("app")')
    else:
        raise AssertionError("attached to a container that is not running")


async def _echo(session: AttachStream, line: bytes) -> None:
    try:
        await session.write(line)
        async with asyncio.timeout(5):
            assert await session.read() == ("stdout", line)
        await session.close_stdin()
    finally:
        await session.close()


async def test_ephemeral_containers_stop_with_the_pod(node: NodeHarness) -> None:
    await node.create_pod(
        "web",
        {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": "fake/pause"}],
        },
    )
    await node.wait_pod("web", running)
    await debug(node, "web", name="debugger", image="fake/pause")
    pod = await node.wait_pod("web", state_of("debugger", "running"))
    await node.client.delete("v1", "Pod", "web", "default")

    async def gone() -> bool:
        await node.advance(1)
        return not await node.containers(pod)

    await node.eventually(gone, what="everything of the pod removed")
    assert ContainerStatus.RUNNING not in {r.status for r in await node.runtime.list_containers()}
