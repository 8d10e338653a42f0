"""postStart and preStop hooks: exec in the container, an HTTP GET, or a sleep.

postStart runs right after the container starts and blocks the next container's start (as
the kubelet does); when it fails the container is killed and restarted by its policy.
preStop runs before SIGTERM and counts against the termination grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from reconciler.clock import Clock
from reconciler.node.prober import Prober
from reconciler.node.probes import resolve_port
from reconciler.runtime.base import ContainerRuntime, run_exec
from reconciler.runtime.errors import ContainerRuntimeError

__all__ = ["run_hook"]

JSONDict = dict[str, Any]


async def run_hook(
    hook: Mapping[str, Any],
    container: JSONDict,
    container_id: str,
    host_ports: Mapping[int, int],
    runtime: ContainerRuntime,
    prober: Prober,
    clock: Clock,
    timeout_s: float,
) -> str | None:
    """Run the hook within `timeout_s`; None on success, else what went wrong."""
    try:
        async with asyncio.timeout(max(timeout_s, 0.001)):
            if isinstance(hook.get("exec"), dict):
                command = [str(c) for c in hook["exec"].get("command") or []]
                result = await run_exec(runtime, container_id, command)
                if result.exit_code != 0:
                    output = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
                    return f"command {command!r} exited with {result.exit_code}: {output}"
                return None
            if isinstance(hook.get("httpGet"), dict):
                handler = hook["httpGet"]
                port = resolve_port(container, handler.get("port"))
                host_port = host_ports.get(port or 0)
                if host_port is None:
                    return f"port {handler.get('port')!r} is not published"
                outcome = await prober.http_get(
                    host_port,
                    str(handler.get("path") or "/"),
                    {},
                    str(handler.get("scheme") or "HTTP"),
                    timeout_s,
                )
                return None if outcome.ok else outcome.message
            if isinstance(hook.get("sleep"), dict):
                await clock.sleep(float(hook["sleep"].get("seconds") or 0))
                return None
            return "hook has no exec, httpGet or sleep action"
    except TimeoutError:
        return f"hook did not finish within {timeout_s:g}s"
    except ContainerRuntimeError as exc:
        return str(exc)
