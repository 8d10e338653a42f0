"""What the GitOps benchmarks share: watching and requesting over the server's API,
Applications, quiet moments, RSS samples, timed child processes.

`bench.gitops` (a thousand objects, many Applications) and `bench.gitops_push` (git push
to a running pod) measure through these; nothing here times anything by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import Server, cpu_seconds, rss_mb
from reconciler.clock import rfc3339_micro

__all__ = [
    "APPS",
    "LONG",
    "PODS",
    "RssSampler",
    "app_path",
    "application",
    "by_name",
    "create_app",
    "max_pods_server",
    "now_rfc3339",
    "pod_ready",
    "request",
    "run_measured",
    "settle",
    "synced_healthy",
    "wait_for",
    "watch_events",
]

JSONDict = dict[str, Any]

APPS = "/apis/recon.dev/v1alpha1/namespaces/default/applications"
PODS = "/api/v1/namespaces/default/pods"
LONG = aiohttp.ClientTimeout(total=900)


def max_pods_server(data_dir: Path, port: int, max_pods: int) -> Server:
    """`recon serve` on the memory runtime whose one Node admits `max_pods` pods (the default
    110 would keep most of a thousand-object set's pods Pending)."""
    return Server(data_dir, port, runtime="memory", extra_args=("--max-pods", str(max_pods)))


async def watch_events(
    session: aiohttp.ClientSession, path: str, params: dict[str, str]
) -> AsyncGenerator[JSONDict, None]:
    """Watch events of `path` (one JSON object per line, lines of any length)."""
    query = {**params, "watch": "1", "allowWatchBookmarks": "false"}
    async with session.get(path, params=query, timeout=LONG) as response:
        if response.status != 200:
            raise RuntimeError(f"watch {path}: {response.status} {await response.text()}")
        buffer = bytearray()
        async for chunk in response.content.iter_any():
            buffer += chunk
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                if line.strip():
                    yield json.loads(line)


async def request(
    session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> JSONDict:
    async with session.request(method, path, timeout=LONG, **kwargs) as response:
        body = await response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {body[:500]!r}")
        return dict(json.loads(body)) if body else {}


async def wait_for(
    session: aiohttp.ClientSession,
    path: str,
    params: dict[str, str],
    version: str,
    done: Callable[[JSONDict], bool],
    timeout: float,
) -> tuple[float, JSONDict]:
    """The moment (perf_counter) an object of the watch from `version` satisfies `done`."""

    async def watch() -> tuple[float, JSONDict]:
        async with contextlib.aclosing(
            watch_events(session, path, {**params, "resourceVersion": version})
        ) as events:
            async for event in events:
                if event.get("type") in ("ADDED", "MODIFIED") and done(event["object"]):
                    return time.perf_counter(), event["object"]
        raise RuntimeError(f"the watch of {path} ended early")

    return await asyncio.wait_for(watch(), timeout)


def app_path(name: str) -> str:
    return f"{APPS}/{name}"


def by_name(name: str) -> dict[str, str]:
    return {"fieldSelector": f"metadata.name={name}"}


def synced_healthy(app: JSONDict, revision: str | None = None) -> bool:
    status = app.get("status") or {}
    sync = status.get("sync") or {}
    return (
        sync.get("status") == "Synced"
        and (status.get("health") or {}).get("status") == "Healthy"
        and (revision is None or sync.get("revision") == revision)
    )


def pod_ready(pod: JSONDict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


async def create_app(session: aiohttp.ClientSession, app: JSONDict) -> None:
    """POST an Application, retrying while the server is still installing the CRD."""
    deadline = time.monotonic() + 30
    while True:
        async with session.post(APPS, json=app, timeout=LONG) as response:
            body = await response.text()
            if response.status == 201:
                return
            if response.status != 404 or time.monotonic() > deadline:
                raise RuntimeError(f"create Application: {response.status} {body[:500]}")
        await asyncio.sleep(0.2)


def application(name: str, repo: Path, interval: str, namespace: str = "default") -> JSONDict:
    return {
        "apiVersion": "recon.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "source": {"repoURL": f"file://{repo}", "targetRevision": "main", "path": "."},
            "destination": {"namespace": namespace},
            "syncPolicy": {"automated": {"prune": False}, "interval": interval},
        },
    }


async def settle(pid: int, limit: float = 60.0) -> float:
    """Wait until the server used under 10 % of a core over half a second; returns the wait."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        before = cpu_seconds(pid)
        await asyncio.sleep(0.5)
        if cpu_seconds(pid) - before < 0.05:
            break
    return time.perf_counter() - started


class RssSampler:
    """VmRSS of a process every `period` s in a thread: the peak and when it happened."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self._started, rss_mb(self.pid)))
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self) -> tuple[float, float]:
        """(seconds after start, MB) of the highest sample."""
        return max(self.samples, key=lambda s: s[1], default=(0.0, 0.0))


def run_measured(cmd: list[str], timeout: float = 900) -> JSONDict:
    """Run `cmd` to completion (it must succeed): wall time, peak RSS, stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}... failed: {stderr[-2000:]}")
    return {"wall_s": wall, "max_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


def now_rfc3339() -> str:
    """RFC 3339 with microseconds: each request's `requestedAt` is unique."""
    return rfc3339_micro(datetime.now(UTC))
