"""Termination messages: what a container says about why it stopped.

A container writes a short message to its `terminationMessagePath` (`/dev/termination-log`
by default) before it exits, and the kubelet shows it as
`status.containerStatuses[].state.terminated.message` (and in `lastState` after a restart):
Jobs report their result this way, and `kubectl describe pod` prints it. As the kubelet:

- each container instance gets a file of its own, mounted at that path (here in the pod's
  memory directory, gone with the pod);
- at most 4096 bytes of it are read;
- with `terminationMessagePolicy: FallbackToLogsOnError`, an empty file and a failed exit
  give the last 80 lines of the container's log instead, at most 2048 bytes of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "MESSAGE_DIR",
    "fallback_from_logs",
    "message_file",
    "read_message",
    "wants_logs",
]

MESSAGE_DIR = "termination-log"
"""The memory directory of the pod that holds its containers' message files."""
MAX_MESSAGE_BYTES = 4096
MAX_LOG_LINES = 80
MAX_LOG_BYTES = 2048


def message_file(directory: str | Path, container: str, restart_count: int) -> Path:
    return Path(directory) / f"{container}-{restart_count}"


def read_message(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_MESSAGE_BYTES)
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


def wants_logs(container: Mapping[str, Any], message: str, exit_code: int | None) -> bool:
    return (
        not message
        and bool(exit_code)
        and container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
    )


def fallback_from_logs(log: bytes) -> str:
    """The last 80 lines of a log, at most its last 2048 bytes."""
    lines = log.splitlines(keepends=True)[-MAX_LOG_LINES:]
    return b"".join(lines)[-MAX_LOG_BYTES:].decode("utf-8", "replace")
