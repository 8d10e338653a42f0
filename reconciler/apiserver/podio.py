"""The port through which the API server reaches running pods: `pods/log`, `pods/exec`,
`pods/attach`, `pods/portforward`.

Why a port: the API server must not know what runs pods (the layers contract forbids it to
import the node agent or the runtime), yet `kubectl logs` and `kubectl exec` are API calls.
`recon serve` hands the server an implementation of `PodStreams` (the node agent's); without
one, both subresources answer as a cluster with no node would.

The pod has already been looked up and the container name resolved (kubectl's defaulting:
the only container, or the `kubectl.kubernetes.io/default-container` annotation) by the time
these methods are called; they raise `PodStreamError` with an HTTP status and a message
kubectl prints as is (`container "x" in pod "y" is waiting to start: ContainerCreating`,
`previous terminated container "x" in pod "y" not found`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

__all__ = [
    "AttachStream",
    "ExecStream",
    "LogOptions",
    "PodConnection",
    "PodStreamError",
    "PodStreams",
]


class PodStreamError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LogOptions:
    container: str
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    since: datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


class AttachStream(Protocol):
    """A container's main process as `kubectl attach` reaches it: its output from now on and,
    when the container keeps one open (`stdin: true`), its stdin."""

    async def read(self) -> tuple[Literal["stdout", "stderr"], bytes] | None:
        """Output as it comes; None once both streams are closed."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None:
        """The client has no more input. An attached process's stdin only ends with it when
        the container says `stdinOnce: true` (others may attach again later)."""
        ...

    async def resize(self, width: int, height: int) -> None: ...

    async def close(self) -> None: ...


class ExecStream(AttachStream, Protocol):
    """A process started by `kubectl exec`; the same shape as the runtime's exec session."""

    async def exit_code(self) -> int: ...


class PodConnection(Protocol):
    """A TCP connection to a port of the pod, opened by `kubectl port-forward`."""

    async def read(self) -> bytes:
        """What the pod sent, as it comes; b"" once it has closed its side."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close_write(self) -> None:
        """Tell the pod nothing more will come (the client closed its side)."""
        ...

    async def close(self) -> None: ...


class PodStreams(Protocol):
    async def logs(self, pod: dict[str, Any], options: LogOptions) -> AsyncIterator[bytes]:
        """The container's output, in chunks (stop iterating to stop following).

        Awaiting the call finds the container and raises PodStreamError when there is
        nothing to show, so the server can still answer with an error status; only then
        does it start the response and iterate."""
        ...

    async def exec(
        self,
        pod: dict[str, Any],
        container: str,
        command: list[str],
        *,
        stdin: bool,
        tty: bool,
    ) -> ExecStream:
        """Start `command` in the (running) container; raises PodStreamError when it is not
        running (`container not found ("x")`)."""
        ...

    async def attach(
        self, pod: dict[str, Any], container: str, *, stdin: bool, tty: bool
    ) -> AttachStream:
        """Attach to the (running) container's main process; raises PodStreamError when it
        is not running (`container not found ("x")`). Whether output comes through a
        terminal is the container's own `tty`, not the request's."""
        ...

    async def port_forward(self, pod: dict[str, Any], port: int) -> PodConnection:
        """Connect to `port` on the pod's loopback, from inside its network namespace, as the
        kubelet does. Raises PodStreamError with the kubelet's message, which the server
        sends to kubectl on the error stream as is (`error forwarding port 8080 to pod
        <sandbox id>, uid : failed to execute portforward ...`)."""
        ...
