"""The load the API server benchmarks send: ConfigMap bodies, concurrent creates, a CPU meter.

Bodies are serialised before the clock starts, so the client's own JSON encoding is not part
of a measured create. `Meter` reads the server's CPU time from /proc next to this process's
and its finished children's (kubectl), which says who used the two shared cores during a
measured stretch: the server, the load generator, or the peer.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.harness import cpu_seconds

__all__ = ["CONFIGMAPS", "Meter", "configmap", "configmap_list", "create_all", "populate"]

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
_JSON = {"Content-Type": "application/json"}


def configmap(name: str) -> dict[str, Any]:
    """The object every benchmark creates: a small ConfigMap, as an app's config would be."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "yes"}},
        "data": {"key": "value", "other": "x" * 64},
    }


def configmap_list(names: list[str]) -> str:
    """A `kind: List` of ConfigMaps as JSON text, for `kubectl create -f`."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [configmap(n) for n in names]})


async def create_all(
    session: aiohttp.ClientSession, names: list[str], concurrency: int
) -> list[float]:
    """POST one ConfigMap per name from `concurrency` workers; return each request's latency."""
    bodies = iter([(n, json.dumps(configmap(n)).encode()) for n in names])
    latencies: list[float] = []

    async def worker() -> None:
        for name, body in bodies:  # one shared iterator: each body is sent once
            started = time.perf_counter()
            async with session.post(CONFIGMAPS, data=body, headers=_JSON) as resp:
                answer = await resp.read()
                if resp.status != 201:
                    raise RuntimeError(f"create {name}: {resp.status} {answer[:500]!r}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def count_configmaps(session: aiohttp.ClientSession) -> int:
    async with session.get(CONFIGMAPS) as resp:
        resp.raise_for_status()
        return len((await resp.json())["items"])


async def populate(session: aiohttp.ClientSession, total: int, prefix: str = "cm") -> int:
    """Create ConfigMaps until namespace `default` holds `total`; return how many were added."""
    missing = total - await count_configmaps(session)
    if missing > 0:
        await create_all(session, [f"{prefix}-{i}" for i in range(missing)], 16)
    have = await count_configmaps(session)
    if have != total:
        raise RuntimeError(f"namespace default holds {have} ConfigMaps, wanted {total}")
    return max(missing, 0)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Meter:
    """Wall time and CPU seconds (server, this client, finished children) since creation."""

    server_pid: int
    _wall: float = field(init=False)
    _server: float = field(init=False)
    _client: float = field(init=False)
    _children: float = field(init=False)

    def __post_init__(self) -> None:
        self._wall = time.perf_counter()
        self._server = cpu_seconds(self.server_pid)
        self._client = time.process_time()
        self._children = _children_cpu()

    def read(self) -> dict[str, float]:
        return {
            "wall_s": time.perf_counter() - self._wall,
            "server_cpu_s": cpu_seconds(self.server_pid) - self._server,
            "client_cpu_s": time.process_time() - self._client,
            "children_cpu_s": _children_cpu() - self._children,
        }
