"""What a "process" is inside the in-memory runtime (`memory.py`): nothing really runs.

A fake container runs a *program*: an async function given a `FakeProcess` and returning an
exit code. The process offers what programs need to be observable the way real ones are:
stdout/stderr lines (its logs), sleeping on the runtime's clock, SIGTERM delivery
(`FakeTerminated`), files resolved through the container's mounts (named volumes, tmpfs,
host binds such as the memory dirs), a network namespace shared with its pod (listeners on
ports, so a sidecar's `get:http://127.0.0.1:8080/` sees a server's `listen:8080=...`), and
memory accounting against the container's limit (an OOM kill).

Programs come from the image name (`fake/exit:3`, `fake/script`, ...; see `builtin_program`),
or from `MemoryRuntime.register_program`. Exec commands run the same way
(`default_exec_program`). The script language of `fake/script` (one step per argument):

    out:TEXT          print TEXT and a newline on stdout      err:TEXT   ... on stderr
    sleep:SECONDS     sleep on the runtime's clock             exit:N     exit with N
    wait              sleep until terminated                   term:N     exit N on SIGTERM
    term:ignore       ignore SIGTERM (only SIGKILL ends it)    cat:PATH   print a file
    write:PATH=DATA   write a file (through the mounts)        alloc:BYTES  use memory
    listen:PORT=BODY  serve BODY over HTTP on PORT in the pod's network namespace
    get:URL           fetch URL from the pod's network namespace, print the body (exit 1
                      if nothing answers after a few tries)
    ticks:N:SECONDS   print "tick 1" ... "tick N", SECONDS apart
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from reconciler.clock import Clock
from reconciler.runtime.base import BindMount, ContainerSpec, VolumeMount

__all__ = [
    "FakeFiles",
    "FakeNetns",
    "FakeOOMKilled",
    "FakeProcess",
    "FakeProgram",
    "FakeTerminated",
    "Flag",
    "builtin_program",
    "default_exec_program",
    "run_script",
]

SIGTERM_EXIT = 143  # 128 + 15: a process that does not handle SIGTERM
SIGKILL_EXIT = 137  # 128 + 9


class FakeTerminated(Exception):
    """Raised inside a program by `FakeProcess.sleep` when SIGTERM arrives."""

    def __init__(self, code: int) -> None:
        super().__init__(f"terminated, exit {code}")
        self.code = code


class FakeOOMKilled(Exception):
    """Raised inside a program that uses more memory than its container's limit."""


class Flag:
    """`asyncio.Event`'s set / is_set / wait, holding nothing until someone waits.

    Every fake container has three (changed, exited, its process's SIGTERM), and an
    `asyncio.Event` allocates its waiters' deque up front: ≈0.8 KB each, 1.6 MB for the
    666 containers of a benchmark's 333 pods, where most are never awaited and the others
    by one waiter. A flag is set once; who needs it unset again makes a new one."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            self._waiters.remove(waiter)


@dataclass
class FakeNetns:
    """A pod's network namespace: HTTP bodies served on ports (by container id). What
    resolves to it is the runtime's to answer (`_names_by_network`), from the specs."""

    listeners: dict[int, tuple[str, bytes]] = field(default_factory=dict)

    def serve(self, port: int) -> bytes | None:
        entry = self.listeners.get(port)
        return None if entry is None else entry[1]


class _Store:
    """Files under one mount point, keyed by the path below it."""

    def __init__(self, files: dict[str, bytes] | None, host: Path | None, read_only: bool) -> None:
        self.files = files
        self.host = host
        self.read_only = read_only

    def read(self, rel: str) -> bytes:
        if self.host is not None:
            return (self.host / rel).read_bytes()
        assert self.files is not None
        if rel not in self.files:
            raise FileNotFoundError(rel)
        return self.files[rel]

    def write(self, rel: str, data: bytes) -> None:
        if self.read_only:
            raise PermissionError(f"read-only file system: {rel}")
        if self.host is not None:
            (self.host / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.host / rel).write_bytes(data)
            return
        assert self.files is not None
        self.files[rel] = data


class FakeFiles:
    """A container's file view: its mounts over its own (writable unless read-only) root."""

    def __init__(
        self,
        spec: ContainerSpec,
        rootfs: dict[str, bytes],
        volumes: Mapping[str, dict[str, bytes]],
        tmpfs: Mapping[str, dict[str, bytes]],
    ) -> None:
        self._mounts: list[tuple[str, _Store]] = []
        for mount in spec.mounts:
            if isinstance(mount, BindMount):
                store = _Store(None, Path(mount.source), mount.read_only)
            elif isinstance(mount, VolumeMount):
                store = _Store(volumes[mount.volume], None, mount.read_only)
            else:
                store = _Store(tmpfs[mount.target], None, False)
            self._mounts.append((mount.target.rstrip("/"), store))
        self._mounts.sort(key=lambda entry: len(entry[0]), reverse=True)
        self._root = _Store(rootfs, None, spec.read_only_rootfs)

    def _resolve(self, path: str) -> tuple[_Store, str]:
        for target, store in self._mounts:
            if path == target:
                return store, ""  # a file mounted on its own (a termination-log)
            if path.startswith(target + "/"):
                return store, path[len(target) + 1 :]
        return self._root, path.lstrip("/")

    def read(self, path: str) -> bytes:
        store, rel = self._resolve(path)
        return store.read(rel)

    def write(self, path: str, data: bytes) -> None:
        store, rel = self._resolve(path)
        store.write(rel, data)


Sink = Callable[[Literal["stdout", "stderr"], bytes], None]
Resolver = Callable[[str], FakeNetns | None]


class FakeProcess:
    """The handle a program gets. Await its methods: that is where SIGTERM is delivered."""

    def __init__(
        self,
        *,
        container_id: str,
        spec: ContainerSpec,
        clock: Clock,
        files: FakeFiles,
        netns: FakeNetns | None,
        resolve: Resolver,
        sink: Sink,
        argv: Sequence[str],
        stdin: asyncio.Queue[bytes | None] | None = None,
    ) -> None:
        self.container_id = container_id
        self.spec = spec
        self.argv = tuple(argv)
        self.env: Mapping[str, str] = spec.env
        self.files = files
        self.netns = netns
        self.clock = clock
        self.resolve = resolve
        self._sink = sink
        self._stdin = stdin
        self._term = Flag()
        self.term_action: int | Literal["ignore"] = SIGTERM_EXIT
        self.memory_used = 0

    # -- output --------------------------------------------------------------------------

    def stdout(self, data: bytes | str) -> None:
        self._sink("stdout", data.encode() if isinstance(data, str) else data)

    def stderr(self, data: bytes | str) -> None:
        self._sink("stderr", data.encode() if isinstance(data, str) else data)

    async def read_stdin(self) -> bytes | None:
        """The next chunk written to the stdin of an exec (or of a container that keeps one
        open, see `ContainerSpec.stdin`); None at its end (or without stdin)."""
        if self._stdin is None:
            return None
        self._raise_if_terminated()
        if self.term_action == "ignore":
            return await self._stdin.get()
        # SIGTERM ends a wait for input, as it ends a sleep.
        got = asyncio.ensure_future(self._stdin.get())
        term = asyncio.ensure_future(self._term.wait())
        try:
            await asyncio.wait({got, term}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            term.cancel()
            if not got.done():
                got.cancel()
        if got.done() and not got.cancelled():
            return got.result()
        self._raise_if_terminated()
        return None

    # -- time and signals ----------------------------------------------------------------

    def deliver_sigterm(self) -> None:
        self._term.set()

    def _raise_if_terminated(self) -> None:
        if self._term.is_set() and self.term_action != "ignore":
            raise FakeTerminated(self.term_action)

    async def sleep(self, seconds: float | None = None) -> None:
        """Sleep `seconds` (None: forever) on the clock; raise FakeTerminated on SIGTERM
        unless the program set `term_action = "ignore"`."""
        self._raise_if_terminated()
        if seconds is None and self.term_action != "ignore":
            # What most programs do until the end (every pause sandbox): wait on the flag
            # itself, without the task and the `asyncio.wait` of a timed sleep (≈2.4 KB per
            # sleeping container).
            await self._term.wait()
            self._raise_if_terminated()
            return
        waits: set[asyncio.Future[Any]] = set()
        if seconds is not None:
            waits.add(asyncio.ensure_future(self.clock.sleep(seconds)))
        term = asyncio.ensure_future(self._term.wait()) if self.term_action != "ignore" else None
        if term is not None:
            waits.add(term)
        if not waits:
            await asyncio.get_running_loop().create_future()  # forever, until killed
            return
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in waits:
                pending.cancel()
        if term is not None and term in done:
            self._raise_if_terminated()

    # -- network and memory --------------------------------------------------------------

    def listen(self, port: int, body: bytes) -> None:
        if self.netns is not None:
            self.netns.listeners[port] = (self.container_id, body)

    async def http_get(
        self, url: str, attempts: int = 50, interval_s: float = 0.02
    ) -> bytes | None:
        """GET `url` from this pod's network namespace, retrying while nothing listens."""
        parts = urlsplit(url)
        port = parts.port or 80
        for attempt in range(attempts):
            host = parts.hostname or ""
            netns = self.netns if host in ("127.0.0.1", "localhost") else self.resolve(host)
            body = None if netns is None else netns.serve(port)
            if body is not None:
                return body
            if attempt + 1 < attempts:
                await self.sleep(interval_s)
        return None

    def allocate(self, nbytes: int) -> None:
        self.memory_used += nbytes
        limit = self.spec.memory_bytes
        if limit is not None and self.memory_used > limit:
            raise FakeOOMKilled()


FakeProgram = Callable[[FakeProcess], Awaitable[int]]


async def run_script(proc: FakeProcess, steps: Sequence[str]) -> int:
    """Run `fake/script` steps (see the module docstring); the exit code is 0 at the end."""
    for step in steps:
        verb, _, arg = step.partition(":")
        if verb == "out":
            proc.stdout(arg + "\n")
        elif verb == "err":
            proc.stderr(arg + "\n")
        elif verb == "sleep":
            await proc.sleep(float(arg))
        elif verb == "exit":
            return int(arg)
        elif verb == "wait":
            await proc.sleep(None)
        elif verb == "term":
            proc.term_action = "ignore" if arg == "ignore" else int(arg)
        elif verb == "cat":
            try:
                proc.stdout(proc.files.read(arg))
            except OSError as exc:
                proc.stderr(f"cat: {arg}: {exc.__class__.__name__}\n")
                return 1
        elif verb == "write":
            path, _, data = arg.partition("=")
            try:
                proc.files.write(path, data.encode())
            except OSError as exc:
                proc.stderr(f"write: {path}: {exc.__class__.__name__}\n")
                return 1
        elif verb == "listen":
            port, _, body = arg.partition("=")
            proc.listen(int(port), body.encode())
        elif verb == "get":
            fetched = await proc.http_get(arg)
            if fetched is None:
                proc.stderr(f"get: {arg}: connection refused\n")
                return 1
            proc.stdout(fetched)
        elif verb == "ticks":
            count, _, interval = arg.partition(":")
            for number in range(1, int(count) + 1):
                proc.stdout(f"tick {number}\n")
                await proc.sleep(float(interval or "0"))
        elif verb == "alloc":
            proc.allocate(int(arg))
        else:
            proc.stderr(f"fake/script: unknown step {step!r}\n")
            return 127
    return 0


def _repository_and_tag(image: str) -> tuple[str, str]:
    name, _, _digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, "latest"


async def _wait_forever(proc: FakeProcess) -> int:
    await proc.sleep(None)
    return 0


async def _pause(proc: FakeProcess) -> int:
    proc.term_action = 0  # the pause binary exits 0 on SIGTERM
    await proc.sleep(None)
    return 0


async def _ignore_sigterm(proc: FakeProcess) -> int:
    proc.term_action = "ignore"
    await proc.sleep(None)
    return 0


async def _cat_stdin(proc: FakeProcess) -> int:
    while (chunk := await proc.read_stdin()) is not None:
        proc.stdout(chunk)
    return 0


def builtin_program(image: str) -> FakeProgram:
    """The program an image runs when none is registered for it:

    - `fake/exit:N`: exits with N at once (`fake/exit` exits 0);
    - `fake/script`: runs its command and args as script steps;
    - `fake/pause`: sleeps; exits 0 on SIGTERM;
    - `fake/ignore-sigterm`: only SIGKILL ends it;
    - `fake/cat`: copies its stdin to stdout until the stdin ends, then exits 0 (a
      container with `stdin`, for attach);
    - anything else: sleeps until terminated (SIGTERM -> 143).
    """
    repository, tag = _repository_and_tag(image)
    if repository == "fake/exit":
        code = int(tag) if tag.isdigit() else 0

        async def exit_now(proc: FakeProcess) -> int:
            return code

        return exit_now
    if repository == "fake/script":
        return lambda proc: run_script(proc, proc.argv)
    if repository == "fake/pause":
        return _pause
    if repository == "fake/ignore-sigterm":
        return _ignore_sigterm
    if repository == "fake/cat":
        return _cat_stdin
    return _wait_forever


async def default_exec_program(proc: FakeProcess) -> int:
    """Exec commands the fake understands: `true`, `false`, `exit N`, `echo ...`,
    `cat [PATH]` (stdin when no path), `sleep S`, `fake-script STEP...`; others exit 127."""
    argv = proc.argv
    command = argv[0] if argv else ""
    if command == "true":
        return 0
    if command == "false":
        return 1
    if command == "exit":
        return int(argv[1]) if len(argv) > 1 else 0
    if command == "echo":
        proc.stdout(" ".join(argv[1:]) + "\n")
        return 0
    if command == "sleep":
        await proc.sleep(float(argv[1]))
        return 0
    if command == "cat" and len(argv) == 1:
        while (chunk := await proc.read_stdin()) is not None:
            proc.stdout(chunk)
        return 0
    if command == "cat":
        return await run_script(proc, [f"cat:{path}" for path in argv[1:]])
    if command == "fake-script":
        return await run_script(proc, argv[1:])
    proc.stderr(f"fake exec: {command}: not found\n")
    return 127
