"""Startup, liveness and readiness probes of one running container.

Kubernetes' rules: nothing but the startup probe runs until it succeeds; a startup or
liveness probe that fails `failureThreshold` times in a row has the container killed (the
agent then restarts it by its restart policy); readiness flips Ready after
`successThreshold` successes or `failureThreshold` failures and never restarts anything.
Defaults: period 10 s, timeout 1 s, failureThreshold 3, successThreshold 1. Sleeping goes
through the injected clock, so tests move time instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.clock import Clock
from reconciler.node import grpc_probe
from reconciler.node.prober import ProbeOutcome, Prober
from reconciler.runtime.base import ContainerRuntime, run_exec
from reconciler.runtime.errors import ContainerRuntimeError

__all__ = ["ContainerProbes", "ProbeSettings", "probe_ports", "resolve_port"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeSettings:
    initial_delay: float
    period: float
    timeout: float
    failure_threshold: int
    success_threshold: int

    @classmethod
    def of(cls, probe: Mapping[str, Any]) -> ProbeSettings:
        return cls(
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            failure_threshold=int(probe.get("failureThreshold") or 3),
            success_threshold=int(probe.get("successThreshold") or 1),
        )


def resolve_port(container: Mapping[str, Any], port: Any) -> int | None:
    """A probe's (or hook's) port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for declared in container.get("ports") or []:
        if declared.get("name") == text:
            return int(declared.get("containerPort") or 0) or None
    return None


def probe_ports(container: Mapping[str, Any]) -> set[int]:
    """Every TCP port a probe or hook of `container` connects to (they are all published)."""
    ports: set[int] = set()
    handlers: list[Any] = [
        container.get(kind) for kind in ("livenessProbe", "readinessProbe", "startupProbe")
    ]
    lifecycle = container.get("lifecycle") or {}
    handlers += [lifecycle.get("postStart"), lifecycle.get("preStop")]
    for handler in handlers:
        if not isinstance(handler, dict):
            continue
        for action in ("httpGet", "tcpSocket", "grpc"):
            if isinstance(handler.get(action), dict):
                port = resolve_port(container, handler[action].get("port"))
                if port:
                    ports.add(port)
    return ports


FailureHandler = Callable[[str, str], Awaitable[None]]
"""Called as (probe kind, message) when a startup or liveness probe gives up."""


class ContainerProbes:
    def __init__(
        self,
        container: JSONDict,
        container_id: str,
        host_ports: Mapping[int, int],
        runtime: ContainerRuntime,
        prober: Prober,
        clock: Clock,
        on_change: Callable[[], None],
        on_failure: FailureHandler,
        on_event: Callable[[str, str], None],
    ) -> None:
        self.container = container
        self.container_id = container_id
        self.host_ports = host_ports
        self.runtime = runtime
        self.prober = prober
        self.clock = clock
        self.on_change = on_change
        self.on_failure = on_failure
        self.on_event = on_event
        self.started = not isinstance(container.get("startupProbe"), dict)
        self.ready = not isinstance(container.get("readinessProbe"), dict)
        self._started_event = asyncio.Event()
        if self.started:
            self._started_event.set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        name = self.container.get("name")
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = self.container.get(kind)
            if isinstance(probe, dict):
                task = loop.create_task(self._loop(kind, probe), name=f"probe-{name}-{kind}")
                self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def run_once(self, probe: Mapping[str, Any], timeout: float) -> ProbeOutcome:
        if isinstance(probe.get("exec"), dict):
            command = [str(c) for c in probe["exec"].get("command") or []]
            try:
                async with asyncio.timeout(timeout):
                    result = await run_exec(self.runtime, self.container_id, command)
            except TimeoutError:
                return ProbeOutcome(False, f"command timed out after {timeout:g}s")
            except ContainerRuntimeError as exc:
                return ProbeOutcome(False, str(exc))
            if result.exit_code == 0:
                return ProbeOutcome(True)
            output = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
            return ProbeOutcome(False, output or f"command exited with {result.exit_code}")
        for action in ("httpGet", "tcpSocket"):
            handler = probe.get(action)
            if not isinstance(handler, dict):
                continue
            port = resolve_port(self.container, handler.get("port"))
            host_port = self.host_ports.get(port or 0)
            if host_port is None:
                return ProbeOutcome(False, f"port {handler.get('port')!r} is not published")
            if action == "tcpSocket":
                return await self.prober.tcp(host_port, timeout)
            headers = {
                str(h.get("name")): str(h.get("value"))
                for h in handler.get("httpHeaders") or []
                if isinstance(h, dict)
            }
            return await self.prober.http_get(
                host_port,
                str(handler.get("path") or "/"),
                headers,
                str(handler.get("scheme") or "HTTP"),
                timeout,
            )
        handler = probe.get("grpc")
        if isinstance(handler, dict):
            port = resolve_port(self.container, handler.get("port"))
            host_port = self.host_ports.get(port or 0)
            if host_port is None:
                return ProbeOutcome(False, f"port {handler.get('port')!r} is not published")
            ok, message = await grpc_probe.check(
                "127.0.0.1", host_port, str(handler.get("service") or ""), timeout
            )
            return ProbeOutcome(ok, message)
        return ProbeOutcome(False, "probe has no exec, httpGet, tcpSocket or grpc action")

    async def _loop(self, kind: str, probe: Mapping[str, Any]) -> None:
        settings = ProbeSettings.of(probe)
        label = {"startupProbe": "Startup", "livenessProbe": "Liveness"}.get(kind, "Readiness")
        if kind != "startupProbe":
            await self._started_event.wait()
        await self.clock.sleep(settings.initial_delay)
        successes = failures = 0
        while True:
            outcome = await self.run_once(probe, settings.timeout)
            if outcome.ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
                self.on_event("Unhealthy", f"{label} probe failed: {outcome.message}")
            if kind == "startupProbe":
                if successes >= 1:
                    self.started = True
                    self._started_event.set()
                    self.on_change()
                    return
                if failures >= settings.failure_threshold:
                    await self.on_failure(label, outcome.message)
                    return
            elif kind == "livenessProbe":
                if failures >= settings.failure_threshold:
                    await self.on_failure(label, outcome.message)
                    return
            else:
                if not self.ready and successes >= settings.success_threshold:
                    self.ready = True
                    self.on_change()
                elif self.ready and failures >= settings.failure_threshold:
                    self.ready = False
                    self.on_change()
            await self.clock.sleep(settings.period)
