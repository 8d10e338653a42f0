"""The Kubernetes WebSocket channel protocol that `kubectl exec` speaks.

Current kubectl opens `pods/exec` as a WebSocket offering `v5.channel.k8s.io` first. Every
binary message starts with one byte naming its channel:

    0 stdin    client -> server
    1 stdout   server -> client
    2 stderr   server -> client
    3 error    server -> client: a Status object, once, when the process ends
    4 resize   client -> server: {"Width": 80, "Height": 24}
    255 close  client -> server (v5 only): [255, channel] closes that channel (stdin EOF)

The Status on channel 3 is how kubectl learns the exit code: `Success`, or `Failure` with
reason `NonZeroExitCode` and the code as an `ExitCode` cause, which kubectl turns into its
own exit status. Older protocols (v1-v3) wrote plain text there. Pure: the handler does I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLOSE",
    "ERROR",
    "PROTOCOLS",
    "RESIZE",
    "STDERR",
    "STDIN",
    "STDOUT",
    "Frame",
    "exit_status",
    "frame",
    "parse_frame",
    "parse_resize",
]

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255

# Best first, as the server picks from what the client offers.
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io")


@dataclass(frozen=True)
class Frame:
    channel: int
    data: bytes


def frame(channel: int, data: bytes) -> bytes:
    return bytes([channel]) + data


def parse_frame(message: bytes) -> Frame | None:
    """A client message split into channel and payload; None for an empty message."""
    if not message:
        return None
    return Frame(message[0], bytes(message[1:]))


def parse_resize(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a resize message, or None when it is not one we can use."""
    try:
        size = json.loads(data)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None
    if width <= 0 or height <= 0:
        return None
    return width, height


def exit_status(protocol: str | None, command: list[str], exit_code: int) -> bytes:
    """What channel 3 carries when the process ended with `exit_code`."""
    if protocol in ("v5.channel.k8s.io", "v4.channel.k8s.io"):
        status: dict[str, Any] = {"metadata": {}, "status": "Success"}
        if exit_code != 0:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": (
                    f"command terminated with non-zero exit code: error executing command "
                    f"{_go_list(command)}, exit code {exit_code}"
                ),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
            }
        return json.dumps(status, separators=(",", ":")).encode()
    if exit_code == 0:
        return b""
    return f"command terminated with non-zero exit code: exit code {exit_code}".encode()


def _go_list(items: list[str]) -> str:
    """Go's `%v` of a string slice, as the kubelet's message has it."""
    return "[" + " ".join(items) + "]"
