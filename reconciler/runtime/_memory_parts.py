"""The in-memory runtime's records: containers, networks, volumes, log lines, and the
event and exec sessions it hands out. Plain state, no behaviour beyond bookkeeping;
`memory.py` holds the behaviour. NOTHING REALLY RUNS here either.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from reconciler.runtime.base import (
    ContainerId,
    ContainerSpec,
    ContainerStatus,
    ExecChunk,
    ImageInfo,
    NetworkConfig,
    PortMapping,
    PublishedPort,
    PullPolicy,
    RuntimeEvent,
    SandboxSpec,
)
from reconciler.runtime.errors import (
    ContainerStartError,
    ImageNeverPullError,
    ImageNotFoundError,
    ImageNotPresentError,
    ImagePullError,
)
from reconciler.runtime.fake_process import (
    FakeNetns,
    FakeProcess,
    FakeProgram,
    FakeTerminated,
    Flag,
)

__all__ = [
    "Container",
    "FakeHostPorts",
    "FakeImages",
    "LogLine",
    "MemoryAttachSession",
    "MemoryEventStream",
    "MemoryExecSession",
    "Network",
    "Stream",
    "Volume",
    "normalize_ref",
]

Stream = Literal["stdout", "stderr"]


def normalize_ref(ref: str) -> str:
    """`fake/x` -> `fake/x:latest`; tagged and digest references are kept."""
    if "@" in ref:
        return ref
    return ref if ref.rfind(":") > ref.rfind("/") else f"{ref}:latest"


@dataclass
class LogLine:
    time: datetime
    stream: Stream
    data: bytes


@dataclass
class Container:
    id: ContainerId
    name: str
    image: str
    labels: dict[str, str]
    spec: ContainerSpec | None
    sandbox_spec: SandboxSpec | None
    created_at: datetime
    status: ContainerStatus = ContainerStatus.CREATED
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    oom_killed: bool = False
    netns: FakeNetns | None = None
    ip_address: str | None = None
    ports: tuple[PublishedPort, ...] = ()
    logs: list[LogLine] = field(default_factory=list)
    changed: Flag = field(default_factory=Flag)
    exited: Flag = field(default_factory=Flag)
    task: asyncio.Task[None] | None = None
    process: FakeProcess | None = None
    killing: bool = False
    rootfs: dict[str, bytes] = field(default_factory=dict)
    tmpfs: dict[str, dict[str, bytes]] = field(default_factory=dict)
    stdin: asyncio.Queue[bytes | None] | None = None
    """The running process's stdin, for a container that keeps one open (`spec.stdin`)."""
    attached: list[MemoryAttachSession] | None = None
    """Sessions that see the process's output (None until someone attaches: most never)."""

    def notify(self) -> None:
        self.changed.set()
        self.changed = Flag()

    def output(self, stream: Stream, data: bytes) -> None:
        """What the process writes reaches the attached sessions (the logs are the
        runtime's to keep)."""
        for session in self.attached or ():
            session.sink(stream, data)

    def detach_all(self) -> None:
        """The process is gone: every attached session's output ends."""
        for session in self.attached or ():
            session.end()
        self.attached = None


@dataclass
class Network:
    labels: dict[str, str]
    next_ip: int = 2
    config: NetworkConfig | None = None


@dataclass
class Volume:
    labels: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)


class MemoryEventStream:
    """A subscriber's queue; the runtime puts events (or the error that ends it) there."""

    def __init__(self, on_close: Callable[[MemoryEventStream], None]) -> None:
        self._on_close = on_close
        self.queue: asyncio.Queue[RuntimeEvent | BaseException | None] = asyncio.Queue()

    def __aiter__(self) -> MemoryEventStream:
        return self

    async def __anext__(self) -> RuntimeEvent:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        self._on_close(self)
        self.queue.put_nowait(None)


class MemoryExecSession:
    """An exec in a fake container: the exec program runs as a task of its own."""

    def __init__(self, tty: bool, stdin: asyncio.Queue[bytes | None] | None) -> None:
        self._output: asyncio.Queue[ExecChunk | None] = asyncio.Queue()
        self._stdin = stdin
        self._tty = tty
        self.size: tuple[int, int] | None = None
        """The last (width, height) given to `resize`."""
        self._task: asyncio.Task[int] | None = None

    @property
    def stdin(self) -> asyncio.Queue[bytes | None] | None:
        return self._stdin

    def sink(self, stream: Stream, data: bytes) -> None:
        self._output.put_nowait(ExecChunk("stdout" if self._tty else stream, data))

    def start(self, program: FakeProgram, proc: FakeProcess) -> None:
        self._task = asyncio.create_task(self._run(program, proc))

    async def _run(self, program: FakeProgram, proc: FakeProcess) -> int:
        try:
            return await program(proc)
        except FakeTerminated as exc:
            return exc.code
        finally:
            self._output.put_nowait(None)

    async def read(self) -> ExecChunk | None:
        return await self._output.get()

    async def write(self, data: bytes) -> None:
        if self._stdin is not None:
            self._stdin.put_nowait(data)

    async def close_stdin(self) -> None:
        if self._stdin is not None:
            self._stdin.put_nowait(None)

    async def resize(self, width: int, height: int) -> None:
        self.size = (width, height)

    async def exit_code(self) -> int:
        assert self._task is not None
        return await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class MemoryAttachSession:
    """Attached to a fake container's process: its output from now on (`Container.output`)
    and its stdin queue when the container has one and the session asked to write."""

    def __init__(
        self,
        container: Container,
        *,
        stdin: asyncio.Queue[bytes | None] | None,
        stdin_once: bool,
        tty: bool,
    ) -> None:
        self._container = container
        self._stdin = stdin
        self._stdin_once = stdin_once
        self._tty = tty
        self._output: asyncio.Queue[ExecChunk | None] = asyncio.Queue()
        self.size: tuple[int, int] | None = None
        """The last (width, height) given to `resize`."""

    def sink(self, stream: Stream, data: bytes) -> None:
        self._output.put_nowait(ExecChunk("stdout" if self._tty else stream, data))

    def end(self) -> None:
        self._output.put_nowait(None)

    async def read(self) -> ExecChunk | None:
        chunk = await self._output.get()
        if chunk is None:
            self._output.put_nowait(None)  # and every later read
        return chunk

    async def write(self, data: bytes) -> None:
        if self._stdin is not None:
            self._stdin.put_nowait(data)

    async def close_stdin(self) -> None:
        if self._stdin is not None and self._stdin_once:
            self._stdin.put_nowait(None)
        self._stdin = None

    async def resize(self, width: int, height: int) -> None:
        self.size = (width, height)

    async def close(self) -> None:
        attached = self._container.attached
        if attached is not None and self in attached:
            attached.remove(self)
        self.end()


class FakeImages:
    """Images "on this host" and in the "registry" (every `fake/...` reference, and those
    added; `"*"` makes every reference pullable, for scale runs of real manifests). Pulls
    are counted per reference; `fail_pulls` makes them fail."""

    def __init__(self, pullable: Sequence[str]) -> None:
        self._local: dict[str, ImageInfo] = {}
        self._registry: set[str] = {normalize_ref(r) for r in pullable if r != "*"}
        self._pull_anything = "*" in pullable
        self.pull_counts: Counter[str] = Counter()
        self.fail_pulls: dict[str, str] = {}

    def add_local(self, ref: str) -> None:
        key = normalize_ref(ref)
        digest = hashlib.sha256(key.encode()).hexdigest()
        self._local[key] = ImageInfo(id=f"sha256:{digest}", ref=ref, tags=(key,))

    def add_registry(self, ref: str) -> None:
        self._registry.add(normalize_ref(ref))

    def get(self, ref: str) -> ImageInfo | None:
        return self._local.get(normalize_ref(ref))

    def require(self, ref: str) -> None:
        if normalize_ref(ref) not in self._local:
            raise ImageNotPresentError(
                ref, f"no such image: {ref} (ensure the image before creating the container)"
            )

    async def ensure(self, ref: str, policy: PullPolicy) -> ImageInfo:
        key = normalize_ref(ref)
        if policy is not PullPolicy.ALWAYS and key in self._local:
            return self._local[key]
        if policy is PullPolicy.NEVER:
            raise ImageNeverPullError(
                ref,
                f"image {ref} is not present on this host and the pull policy is Never: "
                "load or build it here, or change imagePullPolicy",
            )
        self.pull_counts[key] += 1
        await asyncio.sleep(0)
        if key in self.fail_pulls:
            raise ImagePullError(ref, f"pulling image {ref} failed: {self.fail_pulls[key]}")
        if key not in self._registry and not key.startswith("fake/") and not self._pull_anything:
            raise ImageNotFoundError(
                ref, f"pulling image {ref} failed: manifest unknown (check the image name and tag)"
            )
        self.add_local(ref)
        return self._local[key]


class FakeHostPorts:
    """Host ports "published" by sandboxes: ephemeral ones from 32768 up, fixed ones checked
    for conflicts the way Docker refuses them ("port is already allocated")."""

    def __init__(self) -> None:
        self._owners: dict[tuple[str, int, str], str] = {}
        self._next = itertools.count(32768)

    def owner(self, host_ip: str, host_port: int, protocol: str) -> str | None:
        return self._owners.get((host_ip, host_port, protocol))

    def publish(
        self, container_id: str, name: str, ports: Sequence[PortMapping]
    ) -> tuple[PublishedPort, ...]:
        published: list[PublishedPort] = []
        for port in ports:
            host_port = port.host_port
            while host_port == 0 or (
                port.host_port == 0 and (port.host_ip, host_port, port.protocol) in self._owners
            ):
                host_port = next(self._next)
            key = (port.host_ip, host_port, port.protocol)
            if key in self._owners:
                self.release(published)
                raise ContainerStartError(
                    f"start container {name}: Bind for {port.host_ip}:{host_port} failed: "
                    "port is already allocated"
                )
            self._owners[key] = container_id
            published.append(PublishedPort(port.container_port, port.protocol, *key[:2]))
        return tuple(published)

    def release(self, ports: Sequence[PublishedPort]) -> None:
        for port in ports:
            self._owners.pop((port.host_ip, port.host_port, port.protocol), None)
