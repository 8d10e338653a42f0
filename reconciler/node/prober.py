"""How a probe reaches a container: HTTP and TCP through the pod's ports on 127.0.0.1.

The host never addresses a container's bridge IP, so httpGet and tcpSocket probes go to the
host port the sandbox publishes for the probed container port (the agent publishes every
probed port, declared or not). Docker's userland proxy accepts a connection on the host side
before it knows whether the container accepts it, and closes it at once when the container
refuses; a TCP probe therefore counts as successful only when the connection is still open
a moment later (or data arrived), which tells a listening port from a closed one.

`MemoryProber` serves the in-memory runtime, whose "ports" exist only inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from reconciler.runtime.memory import MemoryRuntime

__all__ = ["MemoryProber", "NetworkProber", "ProbeOutcome", "Prober"]

_SETTLE_S = 0.05


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    message: str = ""


class Prober(Protocol):
    async def http_get(
        self,
        host_port: int,
        path: str,
        headers: Mapping[str, str],
        scheme: str,
        timeout_s: float,
    ) -> ProbeOutcome: ...

    async def tcp(self, host_port: int, timeout_s: float) -> ProbeOutcome: ...


class NetworkProber:
    """Real connections to 127.0.0.1."""

    host = "127.0.0.1"

    async def http_get(
        self,
        host_port: int,
        path: str,
        headers: Mapping[str, str],
        scheme: str,
        timeout_s: float,
    ) -> ProbeOutcome:
        url = f"{scheme.lower()}://{self.host}:{host_port}{path}"
        try:
            async with asyncio.timeout(timeout_s):
                return await self._http(host_port, path, headers, scheme, url)
        except TimeoutError:
            return ProbeOutcome(False, f'Get "{url}": context deadline exceeded')

    async def _http(
        self, host_port: int, path: str, headers: Mapping[str, str], scheme: str, url: str
    ) -> ProbeOutcome:
        context = None
        if scheme.upper() == "HTTPS":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the kubelet does not verify probe TLS either
        try:
            reader, writer = await asyncio.open_connection(self.host, host_port, ssl=context)
        except OSError as exc:
            return ProbeOutcome(False, f'Get "{url}": dial tcp: {exc.strerror or exc}')
        try:
            lines = [f"GET {path or '/'} HTTP/1.1", f"Host: {self.host}:{host_port}"]
            sent = {k.lower() for k in headers}
            if "user-agent" not in sent:
                lines.append("User-Agent: kube-probe/1.32")
            if "accept" not in sent:
                lines.append("Accept: */*")
            lines += [f"{k}: {v}" for k, v in headers.items()]
            lines += ["Connection: close", "", ""]
            writer.write("\r\n".join(lines).encode("latin-1"))
            await writer.drain()
            status_line = await reader.readline()
        except OSError as exc:
            return ProbeOutcome(False, f'Get "{url}": {exc}')
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        parts = status_line.decode("latin-1").split()
        if len(parts) < 2 or not parts[1].isdigit():
            return ProbeOutcome(False, f'Get "{url}": EOF')
        code = int(parts[1])
        if 200 <= code < 400:
            return ProbeOutcome(True)
        return ProbeOutcome(False, f"HTTP probe failed with statuscode: {code}")

    async def tcp(self, host_port: int, timeout_s: float) -> ProbeOutcome:
        address = f"{self.host}:{host_port}"
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(self.host, host_port)
        except (OSError, TimeoutError) as exc:
            return ProbeOutcome(False, f"dial tcp {address}: connect: {exc}")
        try:
            try:
                data = await asyncio.wait_for(reader.read(1), min(_SETTLE_S, timeout_s))
            except TimeoutError:
                return ProbeOutcome(True)  # still open: something accepted it
            except OSError as exc:
                return ProbeOutcome(False, f"dial tcp {address}: {exc}")
            if data:
                return ProbeOutcome(True)
            return ProbeOutcome(False, f"dial tcp {address}: connect: connection refused")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class MemoryProber:
    """For the in-memory runtime (tests and scale benchmarks): nothing is really listening."""

    def __init__(self, runtime: MemoryRuntime) -> None:
        self.runtime = runtime

    async def http_get(
        self,
        host_port: int,
        path: str,
        headers: Mapping[str, str],
        scheme: str,
        timeout_s: float,
    ) -> ProbeOutcome:
        try:
            self.runtime.host_http_get(host_port)
        except Exception as exc:
            return ProbeOutcome(False, f"Get http://127.0.0.1:{host_port}{path}: {exc}")
        return ProbeOutcome(True)

    async def tcp(self, host_port: int, timeout_s: float) -> ProbeOutcome:
        return await self.http_get(host_port, "/", {}, "HTTP", timeout_s)
