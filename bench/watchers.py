"""Watch fan-out measurement: N watch streams, one PATCH, time to the last stream's event.

Every stream watches the whole ConfigMap collection of namespace `default` from a known
resourceVersion, so no event can fall between connecting and the first write. Each PATCH
sets `data.n` to the write's number; a stream records the arrival time of the event that
carries its number, and the write's latency is the latest arrival minus the moment the PATCH
was sent. The same PATCH, sent the same way, is then timed to a `kubectl get --watch` child
printing it: the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass

import aiohttp

from bench.workload import CONFIGMAPS

__all__ = ["FanOut", "fan_out", "kubectl_watch_latencies", "patch_n"]

_MERGE = {"Content-Type": "application/merge-patch+json"}
CONNECT_TIMEOUT_S = 30.0
EVENT_TIMEOUT_S = 10.0


@dataclass
class FanOut:
    last_s: list[float]  # per write: send -> the last watcher has the event
    first_s: list[float]  # per write: send -> the first watcher has it
    patch_s: list[float]  # per write: the PATCH request's own round trip


async def patch_n(session: aiohttp.ClientSession, name: str, n: str) -> float:
    """Merge-patch `data.n` of ConfigMap `name`; return the request's round trip."""
    started = time.perf_counter()
    body = json.dumps({"data": {"n": n}}).encode()
    async with session.patch(f"{CONFIGMAPS}/{name}", data=body, headers=_MERGE) as resp:
        answer = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"PATCH {name}: {resp.status} {answer[:500]!r}")
    return time.perf_counter() - started


async def fan_out(
    writer: aiohttp.ClientSession,
    streams: aiohttp.ClientSession,
    name: str,
    resource_version: str,
    watchers: int,
    writes: int,
) -> FanOut:
    arrivals: list[dict[str, float]] = [{} for _ in range(watchers)]
    counts: dict[str, int] = defaultdict(int)
    done: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
    connected = asyncio.Semaphore(0)
    url = f"{CONFIGMAPS}?watch=true&resourceVersion={resource_version}"

    async def watch(index: int) -> None:
        async with streams.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            if resp.status != 200:
                raise RuntimeError(f"watch {index}: {resp.status} {await resp.text()}")
            connected.release()
            async for line in resp.content:
                now = time.perf_counter()
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object", {})
                if obj.get("metadata", {}).get("name") != name:
                    continue
                n = (obj.get("data") or {}).get("n")
                if n is None or n in arrivals[index]:
                    continue
                arrivals[index][n] = now
                counts[n] += 1
                if counts[n] == watchers:
                    done[n].set()

    tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
    result = FanOut([], [], [])
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            for _ in range(watchers):
                await connected.acquire()
        # A first write that every stream must see before any write is timed.
        await patch_n(writer, name, "prime")
        await asyncio.wait_for(done["prime"].wait(), EVENT_TIMEOUT_S)
        for i in range(writes):
            key = str(i)
            sent = time.perf_counter()
            result.patch_s.append(await patch_n(writer, name, key))
            await asyncio.wait_for(done[key].wait(), EVENT_TIMEOUT_S)
            times = [a[key] for a in arrivals]
            result.last_s.append(max(times) - sent)
            result.first_s.append(min(times) - sent)
            await asyncio.sleep(0.05)  # writes are independent: no queue builds up
    finally:
        for task in tasks:
            task.cancel()
        failures = await asyncio.gather(*tasks, return_exceptions=True)
    for failure in failures:
        if isinstance(failure, Exception) and not isinstance(failure, asyncio.CancelledError):
            raise RuntimeError(f"a watch stream failed: {failure!r}") from failure
    return result


async def kubectl_watch_latencies(
    command: list[str], writer: aiohttp.ClientSession, name: str, writes: int
) -> list[float]:
    """Time from sending a PATCH to `kubectl get NAME --watch -o name` printing the change."""
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    latencies = []
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), CONNECT_TIMEOUT_S)
        if not first.strip():
            raise RuntimeError("kubectl get --watch printed nothing")
        await asyncio.sleep(1.0)  # past its list: the watch request is open
        try:  # nothing may be printed before the first write, or the timings would be off
            extra = await asyncio.wait_for(proc.stdout.readline(), 0.5)
            raise RuntimeError(f"kubectl get --watch printed {extra!r} before any write")
        except TimeoutError:
            pass
        for i in range(writes):
            sent = time.perf_counter()
            await patch_n(writer, name, f"kubectl-{i}")
            line = await asyncio.wait_for(proc.stdout.readline(), EVENT_TIMEOUT_S)
            latencies.append(time.perf_counter() - sent)
            if not line.strip():
                raise RuntimeError("kubectl get --watch ended early")
            await asyncio.sleep(0.3)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    return latencies
