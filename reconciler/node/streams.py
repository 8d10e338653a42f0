"""`kubectl logs`, `exec`, `attach` and `port-forward` on this node: the API server's
`PodStreams` port.

The API server resolves the pod and the container name, then calls here; this module finds
the engine container that holds that pod container's output (app, init or ephemeral: all
are labelled alike) and hands the runtime's log stream, exec or attach session back. It
reads only what the runtime keeps: the pod worker labels every container record with the
pod uid, the pod container's name and its restart count, and keeps the newest two records
per container (so `--previous` has something to read).

    restart count 0  exited 1   <- `--previous`: the status's lastState.terminated
    restart count 1  running    <- current: the status's running (or terminated) container

A container waiting in CrashLoopBackOff has no current container, so, like the kubelet, the
current logs are those of its last run. Before the status names any container (it is
written a moment after the engine starts one), the highest restart count is current.

Port-forward connects from inside the pod's network namespace (the running sandbox's,
from `ContainerRuntime.network_namespace`) to the port on loopback: see `netns`.

Errors are `PodStreamError`s with the kubelet's messages, which kubectl prints as is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from reconciler.apiserver.podio import (
    AttachStream,
    ExecStream,
    LogOptions,
    PodConnection,
    PodStreamError,
    PodStreams,
)
from reconciler.node.containers import CONTAINER_NAME_LABEL, RESTART_COUNT_LABEL
from reconciler.node.netns import open_connection_in
from reconciler.runtime.base import (
    POD_UID_LABEL,
    ROLE_LABEL,
    AttachSession,
    ContainerRuntime,
    ContainerState,
    ContainerStatus,
    ExecSession,
)
from reconciler.runtime.errors import (
    ContainerNotRunningError,
    ContainerRuntimeError,
    NotFoundError,
)

__all__ = ["NodeStreams"]


def _restart_count(state: ContainerState) -> int:
    try:
        return int(state.labels.get(RESTART_COUNT_LABEL, "0"))
    except ValueError:
        return 0


def _pod_name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name") or "")


def _waiting_reason(pod: Mapping[str, Any], container: str) -> str:
    """Why the pod's status says the container is waiting (ContainerCreating if it says
    nothing yet)."""
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or ():
            if entry.get("name") == container:
                waiting = (entry.get("state") or {}).get("waiting") or {}
                reason = waiting.get("reason")
                if reason:
                    return str(reason)
    return "ContainerCreating"


def _status_ids(pod: Mapping[str, Any], container: str) -> tuple[str | None, str | None]:
    """(current, previous) engine ids as the kubelet picks them from the pod status: the
    running or terminated container, else the last terminated one (a container waiting in
    CrashLoopBackOff shows its last run); previous is always the last terminated one."""
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or ():
            if entry.get("name") != container:
                continue
            state = entry.get("state") or {}
            last = (entry.get("lastState") or {}).get("terminated") or {}
            previous = _engine_id(last.get("containerID"))
            current = _engine_id(
                (state.get("running") or {}).get("containerID")
                or (state.get("terminated") or {}).get("containerID")
                or entry.get("containerID")
            )
            return current or previous, previous
    return None, None


def _engine_id(container_id: object) -> str | None:
    """`docker://abc` -> `abc`."""
    if not isinstance(container_id, str) or not container_id:
        return None
    return container_id.partition("://")[2] or container_id


def _pick(
    pod: Mapping[str, Any], container: str, records: list[ContainerState], previous: bool
) -> ContainerState | None:
    """The record a log call reads: the one the status names, else by restart count (newest
    is current, the one before it previous) when the status has not caught up yet."""
    current_id, previous_id = _status_ids(pod, container)
    wanted = previous_id if previous else current_id
    if wanted is not None:
        for record in records:
            if record.id == wanted or record.id.startswith(wanted) or wanted.startswith(record.id):
                return record
    if previous:
        return records[1] if len(records) > 1 else None
    return records[0] if records else None


class _Attach:
    """A runtime attach session in the port's shape (chunks as (stream, data) pairs)."""

    def __init__(self, session: AttachSession) -> None:
        self._session = session

    async def read(self) -> tuple[Literal["stdout", "stderr"], bytes] | None:
        chunk = await self._session.read()
        return None if chunk is None else (chunk.stream, chunk.data)

    async def write(self, data: bytes) -> None:
        await self._session.write(data)

    async def close_stdin(self) -> None:
        await self._session.close_stdin()

    async def resize(self, width: int, height: int) -> None:
        await self._session.resize(width, height)

    async def close(self) -> None:
        await self._session.close()


class _Exec(_Attach):
    """A runtime exec session in the port's shape, with its exit code."""

    def __init__(self, session: ExecSession) -> None:
        super().__init__(session)
        self._exec = session

    async def exit_code(self) -> int:
        return await self._exec.exit_code()


class _Connection:
    """An asyncio stream pair in the port's shape."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        try:
            return await self._reader.read(64 * 1024)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close_write(self) -> None:
        if self._writer.can_write_eof() and not self._writer.is_closing():
            with contextlib.suppress(OSError):
                self._writer.write_eof()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


class NodeStreams(PodStreams):
    """Serves `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward` from what a
    `ContainerRuntime` keeps."""

    def __init__(self, runtime: ContainerRuntime) -> None:
        self.runtime = runtime

    async def _records(self, pod: Mapping[str, Any], container: str) -> list[ContainerState]:
        """The engine containers of this pod container, newest (highest restart count) first."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        if not uid:
            return []
        listed = await self.runtime.list_containers({POD_UID_LABEL: uid})
        records = [
            c
            for c in listed
            if c.labels.get(ROLE_LABEL) != "sandbox"
            and c.labels.get(CONTAINER_NAME_LABEL) == container
        ]
        return sorted(records, key=_restart_count, reverse=True)

    async def logs(self, pod: dict[str, Any], options: LogOptions) -> AsyncIterator[bytes]:
        name, container = _pod_name(pod), options.container
        records = await self._records(pod, container)
        record = _pick(pod, container, records, options.previous)
        if record is None and options.previous:
            raise PodStreamError(
                400, f'previous terminated container "{container}" in pod "{name}" not found'
            )
        if record is None:
            raise PodStreamError(
                400,
                f'container "{container}" in pod "{name}" is waiting to start: '
                f"{_waiting_reason(pod, container)}",
            )
        return self._stream(record, options)

    async def _stream(self, record: ContainerState, options: LogOptions) -> AsyncIterator[bytes]:
        left = options.limit_bytes
        source = self.runtime.logs(
            record.id,
            tail=options.tail_lines,
            since=options.since,
            follow=options.follow and not options.previous,
            timestamps=options.timestamps,
        )
        try:
            async with contextlib.aclosing(source):
                async for chunk in source:
                    if left is not None:
                        chunk = chunk[:left]
                        left -= len(chunk)
                    if chunk:
                        yield chunk
                    if left is not None and left <= 0:
                        return
        except NotFoundError:
            return  # removed while we read: what was there has been sent

    async def exec(
        self,
        pod: dict[str, Any],
        container: str,
        command: list[str],
        *,
        stdin: bool,
        tty: bool,
    ) -> ExecStream:
        records = await self._records(pod, container)
        current = records[0] if records else None
        if current is None or current.status is not ContainerStatus.RUNNING:
            raise PodStreamError(400, f'container not found ("{container}")')
        try:
            session = await self.runtime.exec(current.id, command, stdin=stdin, tty=tty)
        except (ContainerNotRunningError, NotFoundError) as e:
            raise PodStreamError(400, f'container not found ("{container}")') from e
        return _Exec(session)

    async def attach(
        self, pod: dict[str, Any], container: str, *, stdin: bool, tty: bool
    ) -> AttachStream:
        records = await self._records(pod, container)
        current = records[0] if records else None
        if current is None or current.status is not ContainerStatus.RUNNING:
            raise PodStreamError(400, f'container not found ("{container}")')
        try:
            session = await self.runtime.attach(current.id, stdin=stdin)
        except (ContainerNotRunningError, NotFoundError) as e:
            raise PodStreamError(400, f'container not found ("{container}")') from e
        return _Attach(session)

    async def port_forward(self, pod: dict[str, Any], port: int) -> PodConnection:
        name = _pod_name(pod)
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        listed = await self.runtime.list_containers({POD_UID_LABEL: uid}) if uid else []
        sandboxes = [
            c
            for c in listed
            if c.labels.get(ROLE_LABEL) == "sandbox" and c.status is ContainerStatus.RUNNING
        ]
        if not sandboxes:
            raise PodStreamError(
                400, f'error forwarding port {port} to pod "{name}": its sandbox is not running'
            )
        sandbox = sandboxes[0].id
        # The kubelet's wording (CRI streaming: the pod is named by its sandbox, no uid).
        prefix = f"error forwarding port {port} to pod {sandbox}, uid : "
        try:
            netns = await self.runtime.network_namespace(sandbox)
        except ContainerRuntimeError as e:
            raise PodStreamError(500, prefix + str(e)) from e
        try:
            reader, writer = await open_connection_in(netns, port)
        except ConnectionRefusedError as e:
            raise PodStreamError(
                500,
                f'{prefix}failed to execute portforward in network namespace "{netns}": '
                f'failed to connect to localhost:{port} inside namespace "{sandbox}", {e.strerror}',
            ) from e
        except OSError as e:
            raise PodStreamError(
                500,
                f'{prefix}failed to execute portforward in network namespace "{netns}": '
                f"{e.strerror or e}",
            ) from e
        return _Connection(reader, writer)
