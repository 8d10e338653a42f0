"""`pods/log` and `pods/exec` through the API server's HTTP and WebSocket protocol, served by
`NodeStreams` on the in-memory runtime (kubectl against Docker is in tests/e2e)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from reconciler.apiserver import channels
from reconciler.node.streams import NodeStreams
from reconciler.runtime.fake_process import FakeProcess
from tests.unit.node.conftest import NodeHarness, status_of

JSONDict = dict[str, Any]


@pytest.fixture
async def http(node: NodeHarness) -> AsyncIterator[aiohttp.ClientSession]:
    node.server.pod_streams = NodeStreams(node.runtime)
    assert node.server.credentials is not None
    token = node.server.credentials.token
    async with aiohttp.ClientSession(
        base_url=f"https://127.0.0.1:{node.server.port}",
        headers={"Authorization": f"Bearer {token}"},
        connector=aiohttp.TCPConnector(ssl=False),
    ) as session:
        yield session


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def _message(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    status, body = await _get(http, url)
    return status, json.loads(body)["message"] if status >= 400 else body


LOG = "/api/v1/namespaces/default/pods/{}/log"
EXEC = "/api/v1/namespaces/default/pods/{}/exec"


def _running(pod: JSONDict) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and all("running" in s.get("state", {}) for s in statuses)


async def test_logs_of_the_only_container_with_tail_and_limit(
    node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    await node.create_pod(
        "talk",
        {
            "containers": [
                {"name": "c", "image": "fake/script", "args": ["ticks:5:0", "wait"]},
            ]
        },
    )
    await node.wait_pod("talk", _running)
    lines = [f"tick {i}" for i in range(1, 6)]
    await node.eventually(lambda: _has(http, LOG.format("talk"), "tick 5"), what="five ticks")
    assert await _get(http, LOG.format("talk")) == (200, "\n".join(lines) + "\n")
    assert await _get(http, LOG.format("talk") + "?tailLines=2") == (200, "tick 4\ntick 5\n")
    assert await _get(http, LOG.format("talk") + "?limitBytes=8") == (200, "tick 1\nt")
    status, body = await _get(http, LOG.format("talk") + "?timestamps=true")
    assert status == 200 and body.splitlines()[0].endswith("Z tick 1")
    assert await _message(http, LOG.format("talk") + "?tailLines=-1") == (
        400,
        "tailLines: Invalid value: -1: must be greater than or equal to 0",
    )
    assert await _message(http, LOG.format("talk") + "?container=nope") == (
        400,
        "container nope is not valid for pod talk",
    )
    assert await _message(http, LOG.format("talk") + "?previous=true") == (
        400,
        'previous terminated container "c" in pod "talk" not found',
    )


async def _has(http: aiohttp.ClientSession, url: str, text: str) -> bool:
    status, body = await _get(http, url)
    return status == 200 and text in body


async def test_several_containers_need_a_name(
    node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    await node.create_pod(
        "two",
        {
            "initContainers": [{"name": "init", "image": "fake/script", "args": ["out:i"]}],
            "containers": [
                {"name": "a", "image": "fake/script", "args": ["out:from-a", "wait"]},
                {"name": "b", "image": "fake/script", "args": ["out:from-b", "wait"]},
            ],
        },
    )
    assert await _message(http, LOG.format("two")) == (
        400,
        "a container name must be specified for pod two, choose one of: [a b] "
        "or one of the init containers: [init]",
    )
    await node.wait_pod("two", _running)
    await node.eventually(lambda: _has(http, LOG.format("two") + "?container=b", "from-b"))
    assert await _get(http, LOG.format("two") + "?container=a") == (200, "from-a\n")
    assert await _get(http, LOG.format("two") + "?container=init") == (200, "i\n")


async def test_previous_shows_the_last_run_of_a_crash_loop(
    node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    await node.create_pod(
        "crash",
        {"containers": [{"name": "c", "image": "fake/script", "args": ["out:boom", "exit:1"]}]},
    )

    def restarted(pod: JSONDict) -> bool:
        return bool(status_of(pod, "c").get("restartCount", 0) >= 1)

    async def restart() -> None:
        await node.advance(11)

    await node.wait_pod(
        "crash",
        lambda p: (
            "terminated" in status_of(p, "c").get("lastState", {})
            or "terminated" in status_of(p, "c").get("state", {})
        ),
    )
    await restart()
    await node.wait_pod("crash", restarted)
    # Waiting in CrashLoopBackOff: the current logs are the last run's, as on a kubelet.
    assert await _get(http, LOG.format("crash")) == (200, "boom\n")
    assert await _get(http, LOG.format("crash") + "?previous=true") == (200, "boom\n")


async def test_waiting_container_has_no_logs(
    node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    await node.create_pod(
        "missing",
        {"containers": [{"name": "c", "image": "nowhere/none:1", "imagePullPolicy": "Never"}]},
    )
    await node.wait_pod("missing", lambda p: "waiting" in status_of(p, "c").get("state", {}))
    status, message = await _message(http, LOG.format("missing"))
    assert status == 400
    assert message.startswith('container "c" in pod "missing" is waiting to start: ')


async def _exec(
    http: aiohttp.ClientSession,
    pod: str,
    command: list[str],
    stdin: bytes | None = None,
    protocol: str = "v5.channel.k8s.io",
) -> tuple[bytes, bytes, JSONDict | bytes]:
    query = [("command", c) for c in command] + [("stdout", "true"), ("stderr", "true")]
    if stdin is not None:
        query.append(("stdin", "true"))
    out, err, status = b"", b"", b""
    async with http.ws_connect(
        EXEC.format(pod), params=query, protocols=(protocol,), method="GET"
    ) as ws:
        assert ws.protocol == protocol
        if stdin is not None:
            await ws.send_bytes(channels.frame(channels.STDIN, stdin))
            await ws.send_bytes(bytes([channels.CLOSE, channels.STDIN]))
        async for message in ws:
            assert message.type is aiohttp.WSMsgType.BINARY
            channel, data = message.data[0], message.data[1:]
            if channel == channels.STDOUT:
                out += data
            elif channel == channels.STDERR:
                err += data
            elif channel == channels.ERROR:
                status += data
    if protocol.startswith(("v4", "v5")):
        return out, err, json.loads(status)
    return out, err, status


async def test_exec_streams_output_stdin_and_the_exit_code(
    node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    await node.create_pod(
        "box", {"containers": [{"name": "c", "image": "fake/script", "args": ["wait"]}]}
    )
    await node.wait_pod("box", _running)
    assert await _exec(http, "box", ["echo", "hello", "world"]) == (
        b"hello world\n",
        b"",
        {"metadata": {}, "status": "Success"},
    )
    out, err, status = await _exec(http, "box", ["cat"], stdin=b"piped in\n")
    assert (out, status) == (b"piped in\n", {"metadata": {}, "status": "Success"})
    _, err, status = await _exec(http, "box", ["nosuch"])
    assert err == b"fake exec: nosuch: not found\n"
    assert isinstance(status, dict)
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "127"}]
    _, _, text = await _exec(http, "box", ["exit", "3"], protocol="channel.k8s.io")
    assert text == b"command terminated with non-zero exit code: exit code 3"


async def test_exec_refuses_what_kubectl_would_get_wrong(
    node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    await node.create_pod(
        "done",
        {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "fake/script", "args": ["exit:0"]}],
        },
    )
    await node.wait_pod("done", lambda p: (p.get("status") or {}).get("phase") == "Succeeded")
    url = EXEC.format("done") + "?command=true&stdout=true"
    async with http.get(
        url,
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    ) as response:
        assert response.status == 400
        assert json.loads(await response.text())["message"] == 'container not found ("c")'
    async with http.post(EXEC.format("done") + "?stdout=true") as response:
        assert response.status == 400
        assert json.loads(await response.text())["message"] == "you must specify at least 1 command"
    await node.create_pod(
        "up", {"containers": [{"name": "c", "image": "fake/script", "args": ["wait"]}]}
    )
    await node.wait_pod("up", _running)
    async with http.post(
        EXEC.format("up") + "?command=true&stdout=true",
        headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"},
    ) as response:
        assert response.status == 400
        assert "SPDY is not supported" in json.loads(await response.text())["message"]


async def test_previous_and_current_differ_once_the_container_runs_again(
    node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    runs: list[int] = []

    async def second_run_stays(proc: FakeProcess) -> int:
        runs.append(len(runs) + 1)
        proc.stdout(f"run {runs[-1]}\n")
        if runs[-1] == 1:
            return 1
        await proc.sleep()
        return 0

    node.runtime.register_program("fake/twice", second_run_stays)
    await node.create_pod("again", {"containers": [{"name": "c", "image": "fake/twice"}]})
    await node.wait_pod("again", lambda p: bool(status_of(p, "c").get("lastState")))
    await node.advance(11)
    await node.wait_pod("again", lambda p: _running(p) and status_of(p, "c")["restartCount"] == 1)
    assert await _get(http, LOG.format("again")) == (200, "run 2\n")
    assert await _get(http, LOG.format("again") + "?previous=true") == (200, "run 1\n")


async def test_follow_streams_until_the_container_exits(
    node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    await node.create_pod(
        "ticker",
        {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "fake/script", "args": ["ticks:3:5"]}],
        },
    )
    await node.wait_pod("ticker", _running)
    async with http.get(LOG.format("ticker") + "?follow=true") as response:
        assert response.status == 200
        first = await response.content.readline()
        assert first == b"tick 1\n"
        await node.advance(16)  # the last tick sleeps too: exits at 15 s
        rest = await response.content.read()
    assert rest == b"tick 2\ntick 3\n"
