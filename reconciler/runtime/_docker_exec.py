"""`docker exec` as an `ExecSession`: the hijacked connection of the Engine API, read in a
thread, written from the loop. `docker attach` (`_docker_attach.py`) speaks the same stream.

The engine answers `POST /exec/{id}/start` (and `POST /containers/{id}/attach`) by
upgrading the HTTP connection to a raw stream. Without a TTY the output is multiplexed in
frames: an 8-byte header (stream type: 1 stdout, 2 stderr; three zero bytes; the payload
length, big-endian) then the payload. With a TTY it is the terminal's bytes as they come.
Input goes the other way unframed; half closing the socket ends the process's stdin.

The output is read through the HTTP response's buffered reader, not the bare socket: the
reader may already hold the first bytes of output, read along with the response headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from reconciler.runtime._docker_errors import Op, translate
from reconciler.runtime._threads import BlockingCalls, ThreadStream
from reconciler.runtime.base import ExecChunk

__all__ = ["DockerExecSession", "HijackedStream", "open_exec"]

_STDERR = 2


class _Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def read1(self, size: int = -1, /) -> bytes: ...


def _read_exact(reader: _Reader, size: int) -> bytes | None:
    data = reader.read(size)
    return data if len(data) == size else None


def _frames(reader: _Reader, tty: bool) -> Iterator[ExecChunk]:
    if tty:
        while chunk := reader.read1(65536):
            yield ExecChunk("stdout", chunk)
        return
    while (header := _read_exact(reader, 8)) is not None:
        size = int.from_bytes(header[4:8], "big")
        payload = _read_exact(reader, size) if size else b""
        if payload is None:
            return
        if payload:
            yield ExecChunk("stderr" if header[0] == _STDERR else "stdout", payload)


class HijackedStream:
    """A hijacked connection: output pumped by a thread of its own, input written from the
    loop, `close_stdin` half-closing the socket."""

    def __init__(self, calls: BlockingCalls, connection: Any, tty: bool, name: str) -> None:
        self._calls = calls
        self._tty = tty
        response = getattr(connection, "_response", None)
        reader: _Reader = response.raw._fp.fp if response is not None else connection
        self._socket: socket.socket = getattr(connection, "_sock", connection)
        self._socket.settimeout(None)
        self._output: ThreadStream[ExecChunk] = ThreadStream(
            lambda: _frames(reader, tty), lambda _: self._shutdown(), name=name
        )
        self._closed = False

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._socket.close()

    async def read(self) -> ExecChunk | None:
        try:
            return await self._output.__anext__()
        except StopAsyncIteration:
            return None
        except OSError:
            return None  # the connection went away: the output is over

    async def write(self, data: bytes) -> None:
        await self._calls.run(self._socket.sendall, data)

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            await self._calls.run(self._socket.shutdown, socket.SHUT_WR)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._output.aclose()
        await self._calls.run(self._shutdown)


class DockerExecSession(HijackedStream):
    """One exec; `exit_code` asks the engine."""

    def __init__(
        self,
        calls: BlockingCalls,
        api: Any,
        exec_id: str,
        connection: Any,
        tty: bool,
    ) -> None:
        super().__init__(calls, connection, tty, f"recon-exec-{exec_id[:12]}")
        self._api = api
        self._exec_id = exec_id

    async def resize(self, width: int, height: int) -> None:
        if not self._tty:
            return
        try:
            await self._calls.run(self._api.exec_resize, self._exec_id, height=height, width=width)
        except Exception as exc:
            raise translate(exc, Op.EXEC, self._exec_id) from exc

    async def exit_code(self) -> int:
        delay = 0.005
        while True:
            try:
                info = await self._calls.run(self._api.exec_inspect, self._exec_id)
            except Exception as exc:
                raise translate(exc, Op.EXEC, self._exec_id) from exc
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)


async def open_exec(
    calls: BlockingCalls,
    api: Any,
    container_id: str,
    cmd: Sequence[str],
    *,
    stdin: bool,
    tty: bool,
    env: Mapping[str, str] | None,
    user: str | None,
    workdir: str | None,
) -> DockerExecSession:
    def start() -> tuple[str, Any]:
        created = api.exec_create(
            container_id,
            list(cmd),
            stdout=True,
            stderr=True,
            stdin=stdin,
            tty=tty,
            environment=dict(env) if env else None,
            user=user or "",
            workdir=workdir,
        )
        exec_id = str(created["Id"])
        return exec_id, api.exec_start(exec_id, tty=tty, socket=True)

    try:
        exec_id, connection = await calls.run(start)
    except Exception as exc:
        raise translate(exc, Op.EXEC, container_id) from exc
    return DockerExecSession(calls, api, exec_id, connection, tty)
