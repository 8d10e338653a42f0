"""API server benchmarks, each next to kubectl against the same server in the same run.

    .venv/bin/python -m bench.apiserver [--objects 5000] [--creates 2000]

Measures: creates/s over HTTP, listing 5,000 ConfigMaps, one write fanned out to 50
watchers, idle RSS, start-to-ready. Prints a table and writes JSON to bench/results/.
The machines are shared and noisy: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> str:
        return str(self.data_dir / "kubeconfig")

    def start(self) -> float:
        """Spawn `recon serve`; return seconds until /readyz answered 200."""
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler.cli",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        deadline = started + 30
        while time.perf_counter() < deadline:
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as raw,
                    ctx.wrap_socket(raw) as tls,
                ):
                    tls.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b"200" in tls.recv(64):
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.005)
        raise RuntimeError("recon serve did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def session(self) -> aiohttp.ClientSession:
        token = (self.data_dir / "token").read_text().strip()
        ctx = ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))
        return aiohttp.ClientSession(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            connector=aiohttp.TCPConnector(ssl=ctx, limit=64),
        )


def kubectl(server: Server, *args: str, input_text: str | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["kubectl", "--kubeconfig", server.kubeconfig, *args],
        input=input_text,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return time.perf_counter() - started


def configmap(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "yes"}},
        "data": {"key": "value", "other": "x" * 64},
    }


async def create_many(
    session: aiohttp.ClientSession, names: list[str], concurrency: int = 16
) -> float:
    queue = list(names)
    started = time.perf_counter()

    async def worker() -> None:
        while queue:
            name = queue.pop()
            async with session.post(
                "/api/v1/namespaces/default/configmaps", json=configmap(name)
            ) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"create {name}: {resp.status} {await resp.text()}")
                await resp.read()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def timed(n: int, fn: Callable[[], Awaitable[None]]) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - started)
    return out


async def fan_out(session: aiohttp.ClientSession, watchers: int, writes: int) -> list[float]:
    """Time from sending a PATCH to the last of `watchers` streams receiving its event."""
    await session.post("/api/v1/namespaces/default/configmaps", json=configmap("fanout"))
    async with session.get("/api/v1/namespaces/default/configmaps/fanout") as resp:
        rv = (await resp.json())["metadata"]["resourceVersion"]
    received: list[asyncio.Queue[float]] = [asyncio.Queue() for _ in range(watchers)]
    streams = []

    async def watch(index: int) -> None:
        url = (
            "/api/v1/namespaces/default/configmaps?watch=true&fieldSelector="
            f"metadata.name%3Dfanout&resourceVersion={rv}"
        )
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            async for line in resp.content:
                if line.strip():
                    received[index].put_nowait(time.perf_counter())

    for i in range(watchers):
        streams.append(asyncio.create_task(watch(i)))
    await asyncio.sleep(1.0)  # let every stream connect
    latencies = []
    for i in range(writes):
        sent = time.perf_counter()
        async with session.patch(
            "/api/v1/namespaces/default/configmaps/fanout",
            data=json.dumps({"data": {"n": str(i)}}),
            headers={"Content-Type": "application/merge-patch+json"},
        ):
            pass
        arrivals = [await asyncio.wait_for(q.get(), 10) for q in received]
        latencies.append(max(arrivals) - sent)
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    return latencies


def kubectl_watch_latency(server: Server, writes: int) -> list[float]:
    """Time from a PATCH to `kubectl get --watch` printing the change."""
    out = []
    for i in range(writes):
        proc = subprocess.Popen(
            [
                "kubectl",
                "--kubeconfig",
                server.kubeconfig,
                "get",
                "configmap",
                "fanout",
                "--watch",
                "--output-watch-events",
                "-o",
                "custom-columns=V:.data.k",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # header
        proc.stdout.readline()  # the current object
        sent = time.perf_counter()
        subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                server.kubeconfig,
                "patch",
                "configmap",
                "fanout",
                "--type=merge",
                "-p",
                json.dumps({"data": {"k": str(i)}}),
            ],
            capture_output=True,
            check=True,
        )
        proc.stdout.readline()
        out.append(time.perf_counter() - sent)
        proc.kill()
        proc.wait()
    return out


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def run(objects: int, creates: int) -> dict[str, Any]:
    results: dict[str, Any] = {"objects": objects, "creates": creates}
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", free_port())
        server.data_dir.mkdir()
        results["start_to_ready_fresh_s"] = server.start()
        assert server.proc is not None
        await asyncio.sleep(1.0)
        results["idle_rss_mb"] = rss_mb(server.proc.pid)
        results["kubectl_version_s"] = statistics.median(
            kubectl(server, "version") for _ in range(5)
        )
        async with server.session() as session:
            # 1. creates per second
            elapsed = await create_many(session, [f"c-{i}" for i in range(creates)])
            results["http_creates_per_s"] = creates / elapsed
            batch = 200
            docs = json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": [configmap(f"k-{i}") for i in range(batch)],
                }
            )
            results["kubectl_creates_per_s"] = batch / kubectl(
                server, "create", "-f", "-", input_text=docs
            )
            # 2. list of `objects` ConfigMaps
            await create_many(session, [f"l-{i}" for i in range(objects - creates - batch)])

            async def list_all() -> None:
                async with session.get("/api/v1/namespaces/default/configmaps") as resp:
                    body = await resp.read()
                    assert len(json.loads(body)["items"]) >= objects

            results["http_list_ms"] = median_ms(await timed(10, list_all))
            results["kubectl_list_json_ms"] = 1000 * statistics.median(
                kubectl(server, "get", "configmaps", "-o", "json") for _ in range(3)
            )
            results["kubectl_list_table_ms"] = 1000 * statistics.median(
                kubectl(server, "get", "configmaps") for _ in range(3)
            )
            results["rss_after_objects_mb"] = rss_mb(server.proc.pid)
            # 3. fan-out to 50 watchers
            results["fanout_50_ms"] = median_ms(await fan_out(session, 50, 20))
        results["kubectl_watch_ms"] = median_ms(kubectl_watch_latency(server, 3))
        server.stop()
        # 5b. start-to-ready with the objects already stored
        results["start_to_ready_with_objects_s"] = server.start()
        server.stop()
    return results


def report(results: dict[str, Any]) -> str:
    rows = [
        (
            "creates/s over HTTP",
            f"{results['http_creates_per_s']:.0f}/s",
            f"kubectl create -f: {results['kubectl_creates_per_s']:.0f}/s",
            f"{results['http_creates_per_s'] / results['kubectl_creates_per_s']:.1f}x",
            "≥ 500/s",
            results["http_creates_per_s"] >= 500,
        ),
        (
            f"list {results['objects']} ConfigMaps",
            f"{results['http_list_ms']:.0f} ms",
            f"kubectl get -o json: {results['kubectl_list_json_ms']:.0f} ms",
            f"{results['kubectl_list_json_ms'] / results['http_list_ms']:.1f}x faster",
            "< 300 ms",
            results["http_list_ms"] < 300,
        ),
        (
            "1 write → 50 watchers",
            f"{results['fanout_50_ms']:.1f} ms",
            f"kubectl get --watch: {results['kubectl_watch_ms']:.0f} ms",
            f"{results['kubectl_watch_ms'] / results['fanout_50_ms']:.1f}x faster",
            "< 50 ms",
            results["fanout_50_ms"] < 50,
        ),
        (
            "idle RSS",
            f"{results['idle_rss_mb']:.0f} MB",
            f"after {results['objects']} objects: {results['rss_after_objects_mb']:.0f} MB",
            "",
            "< 80 MB",
            results["idle_rss_mb"] < 80,
        ),
        (
            "start to ready",
            f"{results['start_to_ready_fresh_s'] * 1000:.0f} ms",
            f"kubectl version: {results['kubectl_version_s'] * 1000:.0f} ms; with "
            f"{results['objects']} objects: {results['start_to_ready_with_objects_s'] * 1000:.0f}"
            " ms",
            "",
            "< 1 s",
            results["start_to_ready_fresh_s"] < 1,
        ),
    ]
    lines = [
        "| measure | recon | peer (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, ours, peer, ratio, target, met in rows:
        lines.append(
            f"| {name} | {ours} | {peer} | {ratio} | {target} | {'yes' if met else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--creates", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("kubectl") is None:
        sys.exit("bench.apiserver needs kubectl on PATH (the peer it is compared with)")
    results = asyncio.run(run(args.objects, args.creates))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"apiserver-{stamp}.json").write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\n{os.cpu_count()} CPUs; raw results in bench/results/apiserver-{stamp}.json")


if __name__ == "__main__":
    main()
