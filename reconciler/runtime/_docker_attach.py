"""`docker attach` as an `AttachSession` (`kubectl attach`, `kubectl debug -i`).

`POST /containers/{id}/attach?stream=1&stdout=1&stderr=1[&stdin=1]` hijacks the connection
as an exec's start does (`_docker_exec.py`): output framed unless the container has a TTY,
input raw. Only what is written from now on comes back (no `logs=1`: the kubelet does not
replay earlier output either); the stream ends when the process does.

Ending stdin is where attach differs from exec. Half-closing the socket makes the engine
close the container's stdin when the container was created with `StdinOnce`, but for any
other container it ends the whole attach (the engine's `attach.go` closes the output
streams too). So for a container without `stdin_once`, `close_stdin` only stops writing:
the connection stays open and the output keeps coming until the process exits or the
session is closed, as the kubelet's attach does. With a TTY the engine also watches stdin
for its detach keys (ctrl-p ctrl-q) and ends the session on them, as `docker attach` does.
"""

from __future__ import annotations

from typing import Any

from reconciler.runtime._docker_errors import Op, translate
from reconciler.runtime._docker_exec import HijackedStream
from reconciler.runtime._threads import BlockingCalls
from reconciler.runtime.errors import ContainerNotRunningError

__all__ = ["DockerAttachSession", "open_attach"]


class DockerAttachSession(HijackedStream):
    """One attach; the container's TTY decides the framing, its `StdinOnce` what ending
    stdin means. Without its stdin attached (not asked for, or the container keeps none
    open) what is written goes nowhere, as the engine would not read it."""

    def __init__(
        self,
        calls: BlockingCalls,
        api: Any,
        container_id: str,
        connection: Any,
        *,
        tty: bool,
        stdin_once: bool,
        writable: bool,
    ) -> None:
        super().__init__(calls, connection, tty, f"recon-attach-{container_id[:12]}")
        self._api = api
        self._container_id = container_id
        self._stdin_once = stdin_once
        self._writable = writable

    async def write(self, data: bytes) -> None:
        if self._writable:
            await super().write(data)

    async def close_stdin(self) -> None:
        if self._writable and self._stdin_once:
            await super().close_stdin()

    async def resize(self, width: int, height: int) -> None:
        if not self._tty:
            return
        try:
            await self._calls.run(self._api.resize, self._container_id, height, width)
        except Exception as exc:
            raise translate(exc, Op.ATTACH, self._container_id) from exc


async def open_attach(
    calls: BlockingCalls, api: Any, container_id: str, *, stdin: bool
) -> DockerAttachSession:
    def start() -> tuple[Any, bool, bool, bool]:
        raw = api.inspect_container(container_id)
        state, config = raw.get("State") or {}, raw.get("Config") or {}
        if not state.get("Running"):
            raise ContainerNotRunningError(
                f"attach to container {container_id}: the container is not running"
            )
        write = stdin and bool(config.get("OpenStdin"))
        params = {"stdin": int(write), "stdout": 1, "stderr": 1, "stream": 1}
        connection = api.attach_socket(container_id, params=params)
        return connection, bool(config.get("Tty")), bool(config.get("StdinOnce")), write

    try:
        connection, tty, stdin_once, writable = await calls.run(start)
    except Exception as exc:
        raise translate(exc, Op.ATTACH, container_id) from exc
    return DockerAttachSession(
        calls, api, container_id, connection, tty=tty, stdin_once=stdin_once, writable=writable
    )
