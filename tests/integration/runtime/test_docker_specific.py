"""What only a real engine can show: inside-the-container views (tmpfs really is tmpfs,
hostname, /etc/hosts, shared PID namespaces, a TTY's size), and the thread model under load
(long streams do not starve short calls; closed streams leave no thread behind)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reconciler.runtime.base import (
    BindMount,
    ContainerSpec,
    ContainerStatus,
    SandboxSpec,
    TmpfsMount,
    run_exec,
)
from reconciler.runtime.docker import DockerRuntime
from reconciler.runtime.memdir import filesystem_type
from tests.integration.runtime.conftest import BUSYBOX, PAUSE, requires_docker
from tests.unit.runtime.contract import eventually

pytestmark = [pytest.mark.integration, requires_docker]


class Pod:
    def __init__(self, runtime: DockerRuntime) -> None:
        self.runtime = runtime
        self.run_id = uuid.uuid4().hex[:10]
        self.labels = {"recon.dev/test-run": self.run_id}
        self.network = f"rt-{self.run_id}-net"

    def name(self, what: str) -> str:
        return f"rt-{self.run_id}-{what}"

    async def sandbox(self, **extra: object) -> str:
        await self.runtime.ensure_network(self.network, self.labels)
        spec = SandboxSpec(
            pod_uid=str(uuid.uuid4()),
            name="pod",
            namespace="docker",
            image=PAUSE,
            network=self.network,
            labels=self.labels,
            **extra,  # type: ignore[arg-type]
        )
        return (await self.runtime.run_sandbox(spec)).id

    async def run(self, what: str, *command: str, **extra: object) -> bytes:
        """Run busybox `command` to completion; its exit code must be 0; return its output."""
        container_id = await self.start(what, *command, **extra)
        assert await self.runtime.wait(container_id) == 0
        return b"".join([c async for c in self.runtime.logs(container_id)])

    async def start(self, what: str, *command: str, **extra: object) -> str:
        spec = ContainerSpec(
            name=self.name(what),
            image=BUSYBOX,
            command=command,
            labels=self.labels,
            **extra,  # type: ignore[arg-type]
        )
        container_id = await self.runtime.create_container(spec)
        await self.runtime.start_container(container_id)
        return container_id

    async def cleanup(self) -> None:
        for state in await self.runtime.list_containers(self.labels):
            await self.runtime.remove_container(state.id)
        await self.runtime.remove_network(self.network)


@pytest.fixture
async def pod(docker_runtime: DockerRuntime) -> AsyncIterator[Pod]:
    pod = Pod(docker_runtime)
    try:
        yield pod
    finally:
        await pod.cleanup()


async def test_memory_dir_is_tmpfs_on_both_sides(pod: Pod) -> None:
    directory = await pod.runtime.ensure_memory_dir(pod.run_id, "secret")
    try:
        assert filesystem_type(Path(directory)) == "tmpfs"
        mounts = await pod.run(
            "mounts",
            "grep",
            " /etc/secret ",
            "/proc/mounts",
            mounts=(BindMount(directory, "/etc/secret", read_only=True),),
        )
        assert mounts.split()[2] == b"tmpfs"
        assert b"ro" in mounts.split()[3].split(b",")
    finally:
        await pod.runtime.remove_memory_dirs(pod.run_id)


async def test_tmpfs_mount_inside(pod: Pod) -> None:
    mounts = await pod.run(
        "tmpfs",
        "grep",
        " /scratch ",
        "/proc/mounts",
        mounts=(TmpfsMount("/scratch", size_bytes=2 * 1024 * 1024, mode=0o1777),),
    )
    fields = mounts.split()
    assert fields[2] == b"tmpfs"
    assert b"size=2048k" in fields[3]


async def test_hostname_hosts_and_shared_pid(pod: Pod) -> None:
    sandbox = await pod.sandbox(hostname="web-0", extra_hosts={"db.example": "127.0.0.5"})
    assert await pod.run("hostname", "hostname", sandbox=sandbox) == b"web-0\n"
    hosts = await pod.run("hosts", "cat", "/etc/hosts", sandbox=sandbox)
    assert b"127.0.0.5\tdb.example" in hosts or b"127.0.0.5 db.example" in hosts
    processes = await pod.run("ps", "ps", sandbox=sandbox, share_pid=True)
    assert b"sleep 2147483647" in processes  # the pause container's process
    alone = await pod.run("ps-alone", "ps", sandbox=sandbox)
    assert b"sleep 2147483647" not in alone


async def test_pid_of_joins_another_containers_processes(pod: Pod) -> None:
    """`kubectl debug --target`: the debug container sees the target's processes, and
    neither the sandbox's nor those of the pod's other containers."""
    sandbox = await pod.sandbox()
    target = await pod.start("target", "sh", "-c", "exec sleep 3601", sandbox=sandbox)
    await pod.start("other", "sh", "-c", "exec sleep 3602", sandbox=sandbox)
    processes = await pod.run("debug", "ps", sandbox=sandbox, pid_of=target)
    assert b"sleep 3601" in processes
    assert b"sleep 3602" not in processes and b"sleep 2147483647" not in processes


async def test_attach_resizes_the_containers_terminal(pod: Pod) -> None:
    script = "read line; stty size"
    container_id = await pod.start("attach-tty", "sh", "-c", script, stdin=True, tty=True)
    session = await pod.runtime.attach(container_id, stdin=True)
    try:
        await session.resize(width=101, height=31)
        await session.write(b"go\n")
        output = b""
        async with asyncio.timeout(10):
            while (chunk := await session.read()) is not None:
                output += chunk.data
        assert output.splitlines()[-1].strip() == b"31 101"
    finally:
        await session.close()


async def test_exec_with_a_tty_and_resize(pod: Pod) -> None:
    container_id = await pod.start("tty", "sleep", "3600")
    session = await pod.runtime.exec(container_id, ["sh", "-c", "sleep 0.5; stty size"], tty=True)
    try:
        await session.resize(width=100, height=30)
        output = b""
        async with asyncio.timeout(10):
            while (chunk := await session.read()) is not None:
                assert chunk.stream == "stdout"
                output += chunk.data
        assert output.strip() == b"30 100"
        assert await session.exit_code() == 0
    finally:
        await session.close()


async def test_exec_output_larger_than_a_frame(pod: Pod) -> None:
    container_id = await pod.start("big", "sleep", "3600")
    result = await run_exec(
        pod.runtime, container_id, ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"]
    )
    assert result.exit_code == 0
    assert result.stdout == b"x" * 300000


async def test_long_streams_do_not_starve_short_calls(pod: Pod) -> None:
    """40 `logs --follow` streams stay open (each holds a thread and a connection) while 20
    containers are created, started and inspected concurrently."""

    def log_threads() -> int:
        return sum(t.name.startswith("recon-logs-") for t in threading.enumerate())

    ticker = await pod.start("ticker", "sh", "-c", "while :; do echo t; sleep 0.2; done")
    async with contextlib.AsyncExitStack() as stack:
        streams = [
            await stack.enter_async_context(
                contextlib.aclosing(pod.runtime.logs(ticker, follow=True))
            )
            for _ in range(40)
        ]
        await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 20)
        assert log_threads() >= 40
        started = time.monotonic()
        ids = await asyncio.gather(*(pod.start(f"c{i}", "sleep", "3600") for i in range(20)))
        states = await asyncio.gather(*(pod.runtime.inspect(i) for i in ids))
        assert all(s.status is ContainerStatus.RUNNING for s in states)
        assert time.monotonic() - started < 60
    await eventually(lambda: asyncio.sleep(0, log_threads() == 0), timeout=10)


async def test_closed_event_stream_leaves_no_thread(docker_runtime: DockerRuntime) -> None:
    def event_threads() -> int:
        return sum(t.name == "recon-docker-events" for t in threading.enumerate())

    before = event_threads()
    events = await docker_runtime.events()
    assert event_threads() == before + 1
    pending = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.2)
    await events.aclose()
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
        await pending
    await eventually(lambda: asyncio.sleep(0, event_threads() == before), timeout=5)
