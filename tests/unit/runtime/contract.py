"""The container-runtime contract: one suite every `ContainerRuntime` passes.

`RuntimeContract` holds the tests; an implementation's test module subclasses it and
provides a `harness` fixture (`Harness`): the runtime plus recipes for the workloads the
tests need. A recipe says *what* a container does ("serve this body on port 8080", "exit 7
on SIGTERM"); the Docker harness writes it as busybox shell, the memory harness as a
`fake/script`. So the same assertions hold for a real engine and for the fake the node
agent's unit tests rely on.

Every test labels what it creates with the harness's per-test label; the harness's
finalizer removes everything carrying it and checks that nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from reconciler.runtime.base import (
    MANAGED_LABEL,
    POD_UID_LABEL,
    ROLE_LABEL,
    SANDBOX_ID_LABEL,
    AttachSession,
    BindMount,
    ContainerRuntime,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    EventKind,
    MountInfo,
    NetworkAttachment,
    NetworkConfig,
    PortMapping,
    PullPolicy,
    RuntimeEvent,
    SandboxSpec,
    TmpfsMount,
    VolumeMount,
    run_exec,
    split_log_timestamp,
)
from reconciler.runtime.errors import (
    ConflictError,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRuntimeError,
    ContainerStartError,
    ImageNeverPullError,
    ImageNotFoundError,
    ImageNotPresentError,
    ImagePullError,
    InvalidSpecError,
    ResourceInUseError,
    VolumeNotFoundError,
)

T = TypeVar("T")
TEST_LABEL = "recon.dev/test-run"


@dataclass(frozen=True)
class Program:
    """What a container runs: an image and its command line."""

    image: str
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None


class Recipes(Protocol):
    """Workloads, written for one implementation."""

    def run_forever(self) -> Program: ...

    def exit_with(self, code: int, lines: tuple[str, ...] = ()) -> Program: ...

    def trap_term(self, code: int) -> Program:
        """Prints "ready" once its SIGTERM handler is set; exits `code` on SIGTERM."""
        ...

    def ignore_term(self) -> Program:
        """Prints "ready"; ignores SIGTERM."""
        ...

    def http_server(self, port: int, body: str) -> Program: ...

    def http_get(self, url: str) -> Program:
        """Prints the body and exits 0; exits non-zero if nothing answers (after retries)."""
        ...

    def early_late(self) -> Program:
        """Prints "early", ~1.5 s later "late", then runs on."""
        ...

    def ticks(self, count: int, interval_s: float) -> Program: ...

    def write_file(self, path: str, data: str) -> Program: ...

    def cat_file(self, path: str) -> Program: ...

    def exceed_memory(self) -> Program:
        """Uses far more than 16 MiB of memory."""
        ...

    def exec_output(self, out: str, err: str, code: int) -> list[str]: ...

    def exec_cat_stdin(self) -> list[str]: ...

    def cat_stdin(self) -> Program:
        """Copies its stdin to stdout until the stdin ends, then exits 0."""
        ...


@dataclass
class Harness:
    runtime: ContainerRuntime
    recipes: Recipes
    pause_image: str
    local_image: str
    """Present on this host, pullable from nowhere: IfNotPresent / Never must not pull."""
    missing_image: str | None
    """Absent here; the registry answers "not found". None: no registry to ask (skip)."""
    host_get: Callable[[int], Awaitable[bytes]]
    """GET http://127.0.0.1:<port>/ from the host (a real TCP connection for Docker)."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def labels(self) -> dict[str, str]:
        return {TEST_LABEL: self.run_id}

    def name(self, what: str) -> str:
        return f"rt-{self.run_id}-{what}"

    async def network(self) -> str:
        name = self.name("net")
        await self.runtime.ensure_network(name, self.labels)
        return name

    async def sandbox(
        self, *, ports: tuple[PortMapping, ...] = (), **extra: object
    ) -> ContainerState:
        spec = SandboxSpec(
            pod_uid=str(uuid.uuid4()),
            name=self.name("pod"),
            namespace="contract",
            image=self.pause_image,
            network=await self.network(),
            labels=self.labels,
            ports=ports,
        )
        return await self.runtime.run_sandbox(replace(spec, **extra))  # type: ignore[arg-type]

    def spec(self, what: str, program: Program, **extra: object) -> ContainerSpec:
        spec = ContainerSpec(
            name=self.name(what),
            image=program.image,
            command=program.command,
            args=program.args,
            labels=self.labels,
        )
        return replace(spec, **extra)  # type: ignore[arg-type]

    async def start(self, what: str, program: Program, **extra: object) -> str:
        container_id = await self.runtime.create_container(self.spec(what, program, **extra))
        await self.runtime.start_container(container_id)
        return container_id

    async def logs(self, container_id: str, **options: object) -> bytes:
        chunks = [c async for c in self.runtime.logs(container_id, **options)]  # type: ignore[arg-type]
        return b"".join(chunks)

    async def wait_for_log(self, container_id: str, text: bytes, timeout: float = 15.0) -> bytes:
        return await eventually(lambda: self._logs_containing(container_id, text), timeout)

    async def _logs_containing(self, container_id: str, text: bytes) -> bytes | None:
        logs = await self.logs(container_id)
        return logs if text in logs else None

    async def cleanup(self) -> None:
        """Remove everything labelled with this run; then check nothing is left."""
        for state in await self.runtime.list_containers(self.labels):
            await self.runtime.remove_container(state.id)
        for volume in await self.runtime.list_volumes(self.labels):
            await self.runtime.remove_volume(volume)
        for network in await self.runtime.list_networks(self.labels):
            await self.runtime.remove_network(network)
        assert await self.runtime.list_containers(self.labels) == []
        assert await self.runtime.list_volumes(self.labels) == []
        assert await self.runtime.list_networks(self.labels) == []


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s; last result {result!r}")
        await asyncio.sleep(0.05)


async def read_until(
    session: AttachSession, wanted: bytes | None, timeout: float = 15.0
) -> list[tuple[str, bytes]]:
    """(stream, data) chunks read until their output contains `wanted` (None: until the
    session's output ends)."""
    chunks: list[tuple[str, bytes]] = []
    async with asyncio.timeout(timeout):
        while True:
            chunk = await session.read()
            if chunk is None:
                if wanted is None:
                    return chunks
                raise AssertionError(f"the output ended before {wanted!r}: {chunks!r}")
            chunks.append((chunk.stream, chunk.data))
            if wanted is not None and wanted in b"".join(data for _, data in chunks):
                return chunks


async def next_event(
    events: AsyncIterator[RuntimeEvent],
    match: Callable[[RuntimeEvent], bool],
    timeout: float = 15.0,
) -> RuntimeEvent:
    async with asyncio.timeout(timeout):
        async for event in events:
            if match(event):
                return event
    raise AssertionError("the event stream ended")


class RuntimeContract:
    """The tests. Subclasses provide the `harness` fixture."""

    # -- images ----------------------------------------------------------------------------

    async def test_never_with_missing_image_refuses(self, harness: Harness) -> None:
        missing = harness.missing_image or "127.0.0.1:5000/recon-contract/absent:never"
        with pytest.raises(ImageNeverPullError) as caught:
            await harness.runtime.ensure_image(missing, PullPolicy.NEVER)
        assert isinstance(caught.value, ImageNotPresentError)
        assert "Never" in str(caught.value)

    async def test_present_image_is_not_pulled(self, harness: Harness) -> None:
        # The local image is in no registry: any pull attempt would fail.
        for policy in (PullPolicy.IF_NOT_PRESENT, PullPolicy.NEVER):
            info = await harness.runtime.ensure_image(harness.local_image, policy)
            assert info.id
        assert await harness.runtime.inspect_image(harness.local_image) is not None

    async def test_always_pulls_even_when_present(self, harness: Harness) -> None:
        with pytest.raises(ImagePullError):
            await harness.runtime.ensure_image(harness.local_image, PullPolicy.ALWAYS)

    async def test_missing_image_is_not_found(self, harness: Harness) -> None:
        if harness.missing_image is None:
            pytest.skip("no registry to answer for a missing image")
        for policy in (PullPolicy.IF_NOT_PRESENT, PullPolicy.ALWAYS):
            with pytest.raises(ImageNotFoundError) as caught:
                await harness.runtime.ensure_image(harness.missing_image, policy)
            assert caught.value.ref == harness.missing_image
        assert await harness.runtime.inspect_image(harness.missing_image) is None

    async def test_container_of_absent_image_is_refused(self, harness: Harness) -> None:
        absent = harness.missing_image or "127.0.0.1:5000/recon-contract/absent:create"
        with pytest.raises(ImageNotPresentError):
            await harness.runtime.create_container(harness.spec("absent", Program(absent)))

    # -- pods ------------------------------------------------------------------------------

    async def test_containers_of_a_pod_share_localhost(self, harness: Harness) -> None:
        rt, recipes = harness.runtime, harness.recipes
        sandbox = await harness.sandbox()
        assert sandbox.status is ContainerStatus.RUNNING
        assert sandbox.labels[ROLE_LABEL] == "sandbox"
        assert sandbox.ip_address
        web = await harness.start("web", recipes.http_server(8080, "hello-pod"), sandbox=sandbox.id)
        fetch = await harness.start(
            "fetch", recipes.http_get("http://127.0.0.1:8080/"), sandbox=sandbox.id
        )
        assert await rt.wait(fetch) == 0
        assert b"hello-pod" in await harness.logs(fetch)
        state = await rt.inspect(web)
        assert state.status is ContainerStatus.RUNNING
        assert state.labels[SANDBOX_ID_LABEL] == sandbox.id
        assert state.labels[MANAGED_LABEL] == "true"

    async def test_pods_find_each_other_by_alias(self, harness: Harness) -> None:
        alias = harness.name("web")
        server = await harness.sandbox(dns_aliases=(alias,))
        await harness.start("web", harness.recipes.http_server(8080, "by-name"), sandbox=server.id)
        client = await harness.sandbox(pod_uid=str(uuid.uuid4()), attempt=1)
        fetch = await harness.start(
            "fetch", harness.recipes.http_get(f"http://{alias}:8080/"), sandbox=client.id
        )
        assert await harness.runtime.wait(fetch) == 0
        assert b"by-name" in await harness.logs(fetch)

    async def test_fixed_address_on_a_second_network(self, harness: Harness) -> None:
        """A standalone container with a fixed address and an alias on a network of its own
        subnet; a pod that also joins that network reaches it by both."""
        rt = harness.runtime
        shared = harness.name("fixed")
        third = secrets.randbelow(200) + 20  # a subnet no other run of this test holds
        subnet = f"10.254.{third}.0/24"
        await rt.ensure_network(
            shared, harness.labels, NetworkConfig(subnet, f"10.254.{third}.128/25")
        )
        address, alias = f"10.254.{third}.10", harness.name("gw")
        server = await harness.start(
            "gw",
            harness.recipes.http_server(8080, "fixed"),
            network=await harness.network(),
            extra_networks=(NetworkAttachment(shared, (alias,), address),),
        )
        assert (await rt.inspect(server)).status is ContainerStatus.RUNNING
        client = await harness.sandbox(extra_networks=(NetworkAttachment(shared),))
        for host in (address, alias):
            fetch = await harness.start(
                f"fetch-{host.count('.')}",
                harness.recipes.http_get(f"http://{host}:8080/"),
                sandbox=client.id,
            )
            assert await rt.wait(fetch) == 0
            assert b"fixed" in await harness.logs(fetch)
        with pytest.raises(ContainerRuntimeError):
            await harness.start(
                "taken",
                harness.recipes.run_forever(),
                network=shared,
                ip_address=address,
            )
        await rt.remove_container(client.id)
        await rt.remove_container(server)
        await rt.remove_network(shared)

    async def test_published_port_reaches_the_pod_from_the_host(self, harness: Harness) -> None:
        sandbox = await harness.sandbox(ports=(PortMapping(8080),))
        [port] = sandbox.ports
        assert port.host_ip == "127.0.0.1"
        assert port.host_port > 0
        assert port.container_port == 8080
        await harness.start(
            "web", harness.recipes.http_server(8080, "from-the-host"), sandbox=sandbox.id
        )
        body = await eventually(lambda: harness.host_get(port.host_port))
        assert b"from-the-host" in body

    async def test_taken_host_port_fails_the_second_sandbox(self, harness: Harness) -> None:
        first = await harness.sandbox(ports=(PortMapping(8080),))
        taken = first.ports[0].host_port
        second_uid = str(uuid.uuid4())
        with pytest.raises(ContainerStartError):
            await harness.sandbox(
                ports=(PortMapping(8080, host_port=taken),), pod_uid=second_uid, attempt=1
            )
        assert await harness.runtime.list_containers({POD_UID_LABEL: second_uid}) == []

    async def test_ports_are_published_on_loopback_only(self, harness: Harness) -> None:
        with pytest.raises(InvalidSpecError, match="loopback"):
            await harness.sandbox(ports=(PortMapping(8080, host_ip="0.0.0.0"),))

    # -- lifecycle -------------------------------------------------------------------------

    async def test_joining_another_containers_pid_namespace(self, harness: Harness) -> None:
        """`kubectl debug --target`: a container of the pod in its target's PID namespace,
        which must exist to create it and run to start it."""
        rt = harness.runtime
        sandbox = (await harness.sandbox()).id
        program = harness.recipes.run_forever()
        target = await harness.start("target", program, sandbox=sandbox)
        debug = await harness.start("debug", program, sandbox=sandbox, pid_of=target)
        assert (await rt.inspect(debug)).pid_of == target
        shared = await harness.start("shared", program, sandbox=sandbox, share_pid=True)
        assert (await rt.inspect(shared)).pid_of == sandbox
        assert (await rt.inspect(target)).pid_of is None
        with pytest.raises(InvalidSpecError):
            await rt.create_container(
                harness.spec("nothing", program, sandbox=sandbox, pid_of="no-such-container")
            )
        await rt.stop_container(target, 0)
        late = await rt.create_container(
            harness.spec("late", program, sandbox=sandbox, pid_of=target)
        )
        with pytest.raises(ContainerStartError):
            await rt.start_container(late)

    async def test_exit_code_and_times(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await rt.create_container(
            harness.spec("exit", harness.recipes.exit_with(3, ("bye",)))
        )
        created = await rt.inspect(container_id)
        assert created.status is ContainerStatus.CREATED
        assert created.exit_code is None
        await rt.start_container(container_id)
        assert await rt.wait(container_id) == 3
        state = await rt.inspect(container_id)
        assert state.status is ContainerStatus.EXITED
        assert state.exit_code == 3
        assert state.started_at is not None and state.finished_at is not None
        assert state.finished_at >= state.started_at
        assert not state.oom_killed

    async def test_stop_respects_sigterm(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start("trap", harness.recipes.trap_term(7))
        await harness.wait_for_log(container_id, b"ready")
        started = time.monotonic()
        await rt.stop_container(container_id, timeout_s=20)
        assert time.monotonic() - started < 10
        state = await rt.inspect(container_id)
        assert state.status is ContainerStatus.EXITED
        assert state.exit_code == 7

    async def test_stop_kills_after_the_timeout(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start("stubborn", harness.recipes.ignore_term())
        await harness.wait_for_log(container_id, b"ready")
        started = time.monotonic()
        await rt.stop_container(container_id, timeout_s=1)
        assert time.monotonic() - started >= 0.9
        state = await rt.inspect(container_id)
        assert state.exit_code == 137
        await rt.stop_container(container_id, timeout_s=1)  # not running: nothing to do

    async def test_restart_of_an_exited_container(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start("again", harness.recipes.exit_with(4, ("run",)))
        assert await rt.wait(container_id) == 4
        await rt.start_container(container_id)
        assert await rt.wait(container_id) == 4
        assert (await harness.logs(container_id)).count(b"run") == 2

    async def test_name_conflict(self, harness: Harness) -> None:
        spec = harness.spec("twice", harness.recipes.run_forever())
        await harness.runtime.create_container(spec)
        with pytest.raises(ConflictError):
            await harness.runtime.create_container(spec)

    async def test_missing_container(self, harness: Harness) -> None:
        rt = harness.runtime
        with pytest.raises(ContainerNotFoundError):
            await rt.inspect(harness.name("nothing"))
        with pytest.raises(ContainerNotFoundError):
            await rt.start_container(harness.name("nothing"))
        with pytest.raises(ContainerNotFoundError):
            await harness.logs(harness.name("nothing"))
        await rt.remove_container(harness.name("nothing"))  # idempotent

    async def test_remove_kills_a_running_container(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start("doomed", harness.recipes.run_forever())
        await rt.remove_container(container_id)
        with pytest.raises(ContainerNotFoundError):
            await rt.inspect(container_id)

    async def test_invalid_specs_are_refused(self, harness: Harness) -> None:
        program = harness.recipes.run_forever()
        with pytest.raises(InvalidSpecError):
            await harness.runtime.create_container(harness.spec("tiny", program, memory_bytes=1024))
        with pytest.raises(InvalidSpecError):
            await harness.runtime.create_container(
                replace(harness.spec("x", program), name="bad name!")
            )
        with pytest.raises(InvalidSpecError):  # another's PID namespace is a pod's thing
            await harness.runtime.create_container(harness.spec("pid", program, pid_of="abc"))
        with pytest.raises(InvalidSpecError):
            await harness.runtime.create_container(harness.spec("once", program, stdin_once=True))

    # -- logs ------------------------------------------------------------------------------

    async def test_logs_and_tail(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start(
            "lines", harness.recipes.exit_with(0, ("one", "two", "three"))
        )
        await rt.wait(container_id)
        assert await harness.logs(container_id) == b"one\ntwo\nthree\n"
        assert await harness.logs(container_id, tail=2) == b"two\nthree\n"
        assert await harness.logs(container_id, tail=0) == b""

    async def test_logs_since_and_timestamps(self, harness: Harness) -> None:
        container_id = await harness.start("times", harness.recipes.early_late())
        await harness.wait_for_log(container_id, b"late")
        stamped = (await harness.logs(container_id, timestamps=True)).splitlines()
        assert len(stamped) == 2
        (early_at, early), (late_at, late) = (split_log_timestamp(line) for line in stamped)
        assert (early, late) == (b"early", b"late")
        assert late_at - early_at >= timedelta(seconds=1)
        since = late_at - timedelta(milliseconds=300)
        assert await harness.logs(container_id, since=since) == b"late\n"

    async def test_follow_ends_when_the_container_exits(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start("ticks", harness.recipes.ticks(3, 0.2))
        async with asyncio.timeout(20):
            followed = b"".join([c async for c in rt.logs(container_id, follow=True)])
        assert followed == b"tick 1\ntick 2\ntick 3\n"

    async def test_follow_can_be_abandoned(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start("forever", harness.recipes.trap_term(0))
        await harness.wait_for_log(container_id, b"ready")
        async with asyncio.timeout(10):
            async with contextlib.aclosing(rt.logs(container_id, follow=True)) as stream:
                async for chunk in stream:
                    assert b"ready" in chunk
                    break

    # -- exec ------------------------------------------------------------------------------

    async def test_exec_output_and_exit_code(self, harness: Harness) -> None:
        container_id = await harness.start("exec", harness.recipes.trap_term(0))
        await harness.wait_for_log(container_id, b"ready")
        result = await run_exec(
            harness.runtime, container_id, harness.recipes.exec_output("out", "err", 3)
        )
        assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")

    async def test_exec_with_stdin(self, harness: Harness) -> None:
        container_id = await harness.start("stdin", harness.recipes.trap_term(0))
        await harness.wait_for_log(container_id, b"ready")
        result = await run_exec(
            harness.runtime,
            container_id,
            harness.recipes.exec_cat_stdin(),
            stdin_data=b"through stdin\n",
        )
        assert (result.exit_code, result.stdout) == (0, b"through stdin\n")

    async def test_exec_in_a_stopped_container(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start("done", harness.recipes.exit_with(0))
        await rt.wait(container_id)
        with pytest.raises(ContainerNotRunningError):
            await rt.exec(container_id, harness.recipes.exec_output("x", "y", 0))

    # -- attach ----------------------------------------------------------------------------

    async def test_attach_writes_stdin_and_reads_output(self, harness: Harness) -> None:
        """`stdin_once`: ending the session's stdin ends the process's, so `cat` exits."""
        rt = harness.runtime
        container_id = await harness.start(
            "attach", harness.recipes.cat_stdin(), stdin=True, stdin_once=True
        )
        session = await rt.attach(container_id, stdin=True)
        try:
            await session.write(b"through attach\n")
            assert await read_until(session, b"through attach\n") == [
                ("stdout", b"through attach\n")
            ]
            await session.close_stdin()
            async with asyncio.timeout(15):
                assert await rt.wait(container_id) == 0
                assert await session.read() is None  # the output ended with the process
        finally:
            await session.close()
        assert await harness.logs(container_id) == b"through attach\n"

    async def test_stdin_stays_open_for_the_next_session(self, harness: Harness) -> None:
        """Without `stdin_once`, a session that is done writing leaves the process's stdin
        open, and the process running, for whoever attaches next."""
        rt = harness.runtime
        container_id = await harness.start("reattach", harness.recipes.cat_stdin(), stdin=True)
        for line in (b"one\n", b"two\n"):
            session = await rt.attach(container_id, stdin=True)
            try:
                await session.write(line)
                assert b"".join(d for _, d in await read_until(session, line)).endswith(line)
                await session.close_stdin()
            finally:
                await session.close()
            assert (await rt.inspect(container_id)).status is ContainerStatus.RUNNING
        assert await harness.logs(container_id) == b"one\ntwo\n"

    async def test_attach_follows_the_output_until_the_process_exits(
        self, harness: Harness
    ) -> None:
        rt = harness.runtime
        container_id = await harness.start("follow", harness.recipes.ticks(6, 0.3))
        session = await rt.attach(container_id)
        try:
            chunks = await read_until(session, None, timeout=20)
        finally:
            await session.close()
        output = b"".join(data for _, data in chunks)
        assert output.endswith(b"tick 6\n") and b"tick 1\n" not in output[1:]
        assert await rt.wait(container_id) == 0

    async def test_attach_with_a_tty(self, harness: Harness) -> None:
        """A terminal's output is all on stdout; resizing it is accepted."""
        rt = harness.runtime
        container_id = await harness.start("tty", harness.recipes.cat_stdin(), stdin=True, tty=True)
        session = await rt.attach(container_id, stdin=True)
        try:
            await session.resize(100, 30)
            await session.write(b"typed\n")
            chunks = await read_until(session, b"typed")
        finally:
            await session.close()
        assert {stream for stream, _ in chunks} == {"stdout"}

    async def test_attach_to_a_stopped_container(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start("gone", harness.recipes.exit_with(0))
        await rt.wait(container_id)
        with pytest.raises(ContainerNotRunningError):
            await rt.attach(container_id, stdin=True)

    # -- listing and events ----------------------------------------------------------------

    async def test_list_by_label(self, harness: Harness) -> None:
        rt = harness.runtime
        program = harness.recipes.run_forever()
        a = await rt.create_container(
            harness.spec("a", program, labels={**harness.labels, "app": "a"})
        )
        await rt.create_container(harness.spec("b", program, labels={**harness.labels, "app": "b"}))
        only_a = await rt.list_containers({**harness.labels, "app": "a"})
        assert [s.id for s in only_a] == [a]
        assert only_a[0].name == harness.name("a")
        assert only_a[0].labels["app"] == "a"
        both = await rt.list_containers(harness.labels)
        assert sorted(s.name for s in both) == [harness.name("a"), harness.name("b")]

    async def test_events_report_start_and_death(self, harness: Harness) -> None:
        rt = harness.runtime
        events = await rt.events()
        try:
            container_id = await harness.start("dies", harness.recipes.exit_with(5))
            mine: Callable[[RuntimeEvent], bool] = lambda e: e.container_id == container_id  # noqa: E731
            started = await next_event(events, lambda e: mine(e) and e.kind is EventKind.STARTED)
            assert started.name == harness.name("dies")
            assert started.labels.get(TEST_LABEL) == harness.run_id
            died = await next_event(events, lambda e: mine(e) and e.kind is EventKind.DIED)
            assert died.exit_code == 5
        finally:
            await events.aclose()

    async def test_oom_kill_is_reported(self, harness: Harness) -> None:
        rt = harness.runtime
        events = await rt.events()
        try:
            container_id = await harness.start(
                "oom", harness.recipes.exceed_memory(), memory_bytes=16 * 1024 * 1024
            )
            await next_event(
                events, lambda e: e.container_id == container_id and e.kind is EventKind.OOM
            )
            assert await rt.wait(container_id) == 137
            assert (await rt.inspect(container_id)).oom_killed
        finally:
            await events.aclose()

    # -- resources, volumes, mounts ----------------------------------------------------------

    async def test_limits_are_applied(self, harness: Harness) -> None:
        container_id = await harness.runtime.create_container(
            harness.spec(
                "limited",
                harness.recipes.run_forever(),
                memory_bytes=64 * 1024 * 1024,
                nano_cpus=500_000_000,
            )
        )
        state = await harness.runtime.inspect(container_id)
        assert state.memory_bytes == 64 * 1024 * 1024
        assert state.nano_cpus == 500_000_000

    async def test_limits_change_while_it_runs(self, harness: Harness) -> None:
        """An in-place resize: the running container takes the new limits and weight."""
        rt = harness.runtime
        container_id = await rt.create_container(
            harness.spec(
                "resized",
                harness.recipes.run_forever(),
                memory_bytes=64 * 1024 * 1024,
                nano_cpus=500_000_000,
                cpu_shares=512,
            )
        )
        await rt.start_container(container_id)
        await rt.update_resources(
            container_id, nano_cpus=250_000_000, memory_bytes=96 * 1024 * 1024, cpu_shares=None
        )
        state = await rt.inspect(container_id)
        assert (state.nano_cpus, state.memory_bytes, state.cpu_shares) == (
            250_000_000,
            96 * 1024 * 1024,
            512,
        )
        assert state.status is ContainerStatus.RUNNING

    async def test_usage_of_a_running_container(self, harness: Harness) -> None:
        """Cumulative CPU time and a memory working set while it runs; none after."""
        rt = harness.runtime
        container_id = await rt.create_container(
            harness.spec("measured", harness.recipes.run_forever())
        )
        assert await rt.usage(container_id) is None  # created, not running
        await rt.start_container(container_id)
        first = await rt.usage(container_id)
        assert first is not None and first.cpu_ns >= 0 and first.memory_bytes >= 0
        second = await rt.usage(container_id)
        assert second is not None and second.cpu_ns >= first.cpu_ns
        await rt.stop_container(container_id, 0)
        assert await rt.usage(container_id) is None
        assert await rt.usage("no-such-container") is None

    async def test_named_volume_outlives_its_containers(self, harness: Harness) -> None:
        rt, recipes = harness.runtime, harness.recipes
        volume = harness.name("data")
        await rt.ensure_volume(volume, harness.labels)
        await rt.ensure_volume(volume, harness.labels)  # idempotent
        mount = (VolumeMount(volume, "/data"),)
        writer = await harness.start("writer", recipes.write_file("/data/f", "kept"), mounts=mount)
        assert await rt.wait(writer) == 0
        await rt.remove_container(writer)
        reader = await harness.start("reader", recipes.cat_file("/data/f"), mounts=mount)
        assert await rt.wait(reader) == 0
        assert await harness.logs(reader) == b"kept"
        assert volume in await rt.list_volumes(harness.labels)
        with pytest.raises(ResourceInUseError):
            await rt.remove_volume(volume)
        await rt.remove_container(reader)
        await rt.remove_volume(volume)
        await rt.remove_volume(volume)  # idempotent
        assert volume not in await rt.list_volumes(harness.labels)

    async def test_volume_must_exist(self, harness: Harness) -> None:
        spec = harness.spec(
            "novol",
            harness.recipes.run_forever(),
            mounts=(VolumeMount(harness.name("never-made"), "/data"),),
        )
        with pytest.raises(VolumeNotFoundError):
            await harness.runtime.create_container(spec)

    async def test_tmpfs_mount(self, harness: Harness) -> None:
        rt, recipes = harness.runtime, harness.recipes
        container_id = await harness.start(
            "scratch",
            recipes.write_file("/scratch/f", "in-memory"),
            mounts=(TmpfsMount("/scratch", size_bytes=1024 * 1024),),
            read_only_rootfs=True,
        )
        assert await rt.wait(container_id) == 0
        state = await rt.inspect(container_id)
        assert MountInfo("tmpfs", "", "/scratch", False) in state.mounts

    async def test_read_only_rootfs(self, harness: Harness) -> None:
        rt = harness.runtime
        container_id = await harness.start(
            "ro", harness.recipes.write_file("/etc/x", "no"), read_only_rootfs=True
        )
        assert await rt.wait(container_id) != 0

    async def test_memory_dir_reaches_the_container(self, harness: Harness) -> None:
        rt = harness.runtime
        pod_uid = str(uuid.uuid4())
        directory = Path(await rt.ensure_memory_dir(pod_uid, "secret"))
        try:
            await asyncio.to_thread((directory / "token").write_bytes, b"s3cr3t")
            mount = (BindMount(str(directory), "/etc/secret", read_only=True),)
            reader = await harness.start(
                "secret", harness.recipes.cat_file("/etc/secret/token"), mounts=mount
            )
            assert await rt.wait(reader) == 0
            assert await harness.logs(reader) == b"s3cr3t"
            writer = await harness.start(
                "secret-w", harness.recipes.write_file("/etc/secret/x", "no"), mounts=mount
            )
            assert await rt.wait(writer) != 0
            assert pod_uid in await rt.list_memory_dir_pods()
        finally:
            await rt.remove_memory_dirs(pod_uid)
        assert not await asyncio.to_thread(directory.exists)
        assert pod_uid not in await rt.list_memory_dir_pods()

    # -- networks and cleanup ----------------------------------------------------------------

    async def test_network_lifecycle(self, harness: Harness) -> None:
        rt = harness.runtime
        network = await harness.network()
        await rt.ensure_network(network, harness.labels)  # idempotent
        assert network in await rt.list_networks(harness.labels)
        sandbox = await harness.sandbox()
        with pytest.raises(ResourceInUseError):
            await rt.remove_network(network)
        await rt.remove_container(sandbox.id)
        await rt.remove_network(network)
        await rt.remove_network(network)  # idempotent
        assert network not in await rt.list_networks(harness.labels)

    async def test_cleanup_by_label_leaves_nothing(self, harness: Harness) -> None:
        rt = harness.runtime
        sandbox = await harness.sandbox(ports=(PortMapping(80),))
        await harness.start("app", harness.recipes.run_forever(), sandbox=sandbox.id)
        await rt.create_container(harness.spec("idle", harness.recipes.run_forever()))
        await rt.ensure_volume(harness.name("vol"), harness.labels)
        assert len(await rt.list_containers(harness.labels)) == 3
        await harness.cleanup()  # asserts that no container, volume or network is left
