"""API server benchmarks, each next to kubectl against the same server in the same run.

    .venv/bin/python -m bench.apiserver [--objects 5000] [--creates 2000] [--only list,...]

1. creates/s: N ConfigMaps POSTed over TLS by 16 concurrent aiohttp workers; peer
   `kubectl create -f` of a `kind: List` file of M ConfigMaps (objects/s of each);
2. list: median of 10 GETs of all 5,000 ConfigMaps; peer `kubectl get configmaps -o json`
   and `kubectl get configmaps` (table), median of 3;
3. fan-out: one PATCH to 50 watch streams, time to the last one, median of 20 writes; peer:
   the same PATCH to `kubectl get configmap X --watch -o name` printing it;
4. RSS: VmRSS of `recon serve` idle after start, after 5,000 objects and after a restart
   on them; peer: an idle `kubectl get --watch`;
5. start to ready: spawn to the first 200 from /readyz, fresh and with 5,000 stored objects;
   peer: `kubectl version` against the server (kubectl's own start-up).

Each benchmark starts its own `recon serve` on a free loopback port and stops it at the end.
Prints tables and writes JSON to bench/results/. The machines are shared and noisy: compare
ratios against the peer, not absolute numbers between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import report
from bench.harness import (
    RESULTS,
    Server,
    free_port,
    kubectl_cmd,
    kubectl_timed,
    machine,
    rss_mb,
    server_env,
    summary,
    warm_pycache,
    write_results,
)
from bench.watchers import fan_out, kubectl_watch_latencies
from bench.workload import CONFIGMAPS, Meter, configmap_list, create_all, populate

__all__ = ["RESULTS", "Server", "free_port", "main"]

_TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@dataclass
class Options:
    objects: int = 5000
    creates: int = 2000
    concurrency: int = 16
    kubectl_creates: int = 500
    watchers: int = 50
    writes: int = 20


@dataclass
class Context:
    options: Options
    tmp: Path
    servers: list[Server] = field(default_factory=list)

    def server(self, name: str, *, cold: bool = False) -> Server:
        """A server for one benchmark (`cold`: with no bytecode cache), remembered so that
        its log can be checked for errors afterwards."""
        server = Server(self.tmp / name, free_port())
        if cold:
            server.pycache = None
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        """Stop every server still running (each is stopped by its own PID)."""
        for server in self.servers:
            server.stop()

    def log_problems(self) -> list[str]:
        found = [f"{s.data_dir.name}: {line}" for s in self.servers for line in s.log_problems()]
        self.servers.clear()
        return found

    @property
    def kubectl_cache(self) -> Path:
        return self.tmp / "kubectl-cache"


# -- 1. creates per second ------------------------------------------------------------


async def bench_creates(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    server = ctx.server("creates")
    server.start()
    try:
        async with server.session() as session:
            await create_all(session, [f"warm-{i}" for i in range(50)], opts.concurrency)
            meter = Meter(server.pid)
            names = [f"http-{i}" for i in range(opts.creates)]
            latencies = await create_all(session, names, opts.concurrency)
            http = meter.read()
            meter = Meter(server.pid)
            serial = await create_all(session, [f"serial-{i}" for i in range(300)], 1)
            http_serial = meter.read()
        kubectl_timed(server, ctx.kubectl_cache, "get", "configmaps", "-o", "name")  # discovery
        kubectl_runs = []
        for run in range(3):
            path = ctx.tmp / f"kubectl-create-{run}.json"
            names = [f"kubectl-{run}-{i}" for i in range(opts.kubectl_creates)]
            path.write_text(configmap_list(names))
            meter = Meter(server.pid)
            kubectl_timed(server, ctx.kubectl_cache, "create", "-f", str(path))
            kubectl_runs.append(meter.read())
        async with server.session() as session, session.get(CONFIGMAPS) as resp:
            stored = len((await resp.json())["items"])
    finally:
        server.stop()
    expected = 50 + opts.creates + 300 + 3 * opts.kubectl_creates
    if stored != expected:
        raise RuntimeError(f"creates: {stored} ConfigMaps stored, expected {expected}")
    kubectl_rates = [opts.kubectl_creates / r["wall_s"] for r in kubectl_runs]
    return {
        "http": {
            "objects": opts.creates,
            "concurrency": opts.concurrency,
            "per_s": opts.creates / http["wall_s"],
            "latency_ms": _ms(summary(latencies)),
            "latency_p99_ms": 1000 * statistics.quantiles(latencies, n=100)[98],
            **http,
            "server_cpu_ms_per_object": 1000 * http["server_cpu_s"] / opts.creates,
        },
        "http_one_connection": {
            "objects": len(serial),
            "per_s": len(serial) / http_serial["wall_s"],
            "latency_ms": _ms(summary(serial)),
            **http_serial,
        },
        "kubectl_create_f": {
            "objects_per_run": opts.kubectl_creates,
            "per_s": statistics.median(kubectl_rates),
            "runs": kubectl_runs,
            "server_cpu_ms_per_object": 1000
            * statistics.median(r["server_cpu_s"] for r in kubectl_runs)
            / opts.kubectl_creates,
        },
    }


# -- 2. list --------------------------------------------------------------------------


async def bench_list(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    server = ctx.server("list")
    server.start()
    try:
        async with server.session() as session:
            await populate(session, opts.objects)

            async def get(accept: str) -> int:
                async with session.get(CONFIGMAPS, headers={"Accept": accept}) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"list: {resp.status} {body[:300]!r}")
                    return len(body)

            async with session.get(CONFIGMAPS) as resp:  # warm-up, and a check of the count
                listed = await resp.json()
            if len(listed["items"]) != opts.objects:
                raise RuntimeError(f"list returned {len(listed['items'])} items")
            json_bytes = await get("application/json")
            meter = Meter(server.pid)
            json_s = await _repeat(10, lambda: get("application/json"))
            json_phase = meter.read()
            table_bytes = await get(_TABLE)
            table_s = await _repeat(5, lambda: get(_TABLE))
        kubectl_timed(server, ctx.kubectl_cache, "get", "namespaces")  # discovery
        kubectl_json = [
            kubectl_timed(server, ctx.kubectl_cache, "get", "configmaps", "-o", "json")
            for _ in range(3)
        ]
        kubectl_table = [
            kubectl_timed(server, ctx.kubectl_cache, "get", "configmaps") for _ in range(3)
        ]
    finally:
        server.stop()
    return {
        "objects": opts.objects,
        "http_json_ms": _ms(summary(json_s)),
        "http_json_bytes": json_bytes,
        "http_json_server_cpu_ms_per_get": 1000 * json_phase["server_cpu_s"] / len(json_s),
        "http_table_ms": _ms(summary(table_s)),
        "http_table_bytes": table_bytes,
        "kubectl_json_ms": _ms(summary(kubectl_json)),
        "kubectl_table_ms": _ms(summary(kubectl_table)),
    }


# -- 3. fan-out -----------------------------------------------------------------------


async def bench_fanout(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    server = ctx.server("fanout")
    server.start()
    try:
        async with server.session() as writer, server.session(limit=0) as streams:
            await create_all(writer, ["fanout"], 1)
            async with writer.get(f"{CONFIGMAPS}/fanout") as resp:
                rv = (await resp.json())["metadata"]["resourceVersion"]
            meter = Meter(server.pid)
            many = await fan_out(writer, streams, "fanout", rv, opts.watchers, opts.writes)
            phase = meter.read()
            async with writer.get(f"{CONFIGMAPS}/fanout") as resp:
                rv = (await resp.json())["metadata"]["resourceVersion"]
            one = await fan_out(writer, streams, "fanout", rv, 1, opts.writes)
            kubectl = kubectl_cmd(
                server, ctx.kubectl_cache, "get", "configmap", "fanout", "--watch", "-o", "name"
            )
            peer = await kubectl_watch_latencies(kubectl, writer, "fanout", 5)
    finally:
        server.stop()
    return {
        "watchers": opts.watchers,
        "writes": opts.writes,
        "last_ms": _ms(summary(many.last_s)),
        "first_ms": _ms(summary(many.first_s)),
        "patch_ms": _ms(summary(many.patch_s)),
        "server_cpu_s": phase["server_cpu_s"],
        "client_cpu_s": phase["client_cpu_s"],
        "one_http_watcher_ms": _ms(summary(one.last_s)),
        "kubectl_watch_ms": _ms(summary(peer)),
    }


# -- 4. RSS ---------------------------------------------------------------------------


async def bench_rss(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    server = ctx.server("rss")
    out: dict[str, Any] = {"objects": opts.objects}
    server.start()
    try:
        await asyncio.sleep(1.0)
        out["idle_1s_mb"] = rss_mb(server.pid)
        await asyncio.sleep(4.0)
        out["idle_5s_mb"] = rss_mb(server.pid)
        async with server.session() as session:
            await populate(session, opts.objects)
        await asyncio.sleep(1.0)
        out["after_objects_mb"] = rss_mb(server.pid)
        out["peak_mb"] = rss_mb(server.pid, key="VmHWM")
        watch = kubectl_cmd(server, ctx.kubectl_cache, "get", "configmap", "cm-0", "--watch")
        out["kubectl_watch_mb"] = await _idle_rss_of([*watch, "-o", "name"])
        server.stop()
        server.start()
        await asyncio.sleep(1.0)
        out["restarted_with_objects_mb"] = rss_mb(server.pid)
    finally:
        server.stop()
    return out


async def _idle_rss_of(command: list[str]) -> float:
    """VmRSS of a command (and its children) 2 s after it printed its first line."""
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    try:
        await asyncio.wait_for(proc.stdout.readline(), 30)
        await asyncio.sleep(2.0)
        return rss_mb(proc.pid, tree=True)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


# -- 5. start to ready ----------------------------------------------------------------


async def bench_start(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    cold, fresh, loaded, stops = [], [], [], []
    for i in range(3):  # no bytecode cache: every module compiled from source
        server = ctx.server(f"start-cold-{i}", cold=True)
        cold.append(server.start())
        server.stop()
    primer = ctx.server("start-primer")  # fills the bytecode cache; not timed
    primer.start()
    primer.stop()
    for i in range(5):
        server = ctx.server(f"start-fresh-{i}")
        fresh.append(server.start())
        stops.append(server.stop())
    server = ctx.server("start-peer")
    server.start()
    kubectl_timed(server, ctx.kubectl_cache, "version")  # warm-up
    kubectl_version = [kubectl_timed(server, ctx.kubectl_cache, "version") for _ in range(5)]
    server.stop()
    server = ctx.server("start-loaded")
    server.start()
    async with server.session() as session:
        await populate(session, opts.objects)
    server.stop()
    for _ in range(5):
        loaded.append(server.start())
        stops.append(server.stop())
    return {
        "objects": opts.objects,
        "fresh_ms": _ms(summary(fresh)),
        "with_objects_ms": _ms(summary(loaded)),
        "cold_bytecode_fresh_ms": _ms(summary(cold)),
        "stop_ms": _ms(summary(stops)),
        "kubectl_version_ms": _ms(summary(kubectl_version)),
        "python_bare_ms": _ms(summary(_python_runs("pass"))),
        "import_cli_ms": _ms(summary(_python_runs(_IMPORT_CLI))),
    }


# Prints how long importing `recon serve`'s modules takes inside the interpreter.
_IMPORT_CLI = (
    "import time; t = time.perf_counter(); import reconciler.cli.main; "
    "print(time.perf_counter() - t)"
)


def _python_runs(code: str, runs: int = 5) -> list[float]:
    """Seconds per run of `python -c code` with the warm bytecode cache: the wall time, or
    what the code printed if it printed a number."""
    env = server_env(warm_pycache(), Path(tempfile.gettempdir()))
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"python -c {code!r} failed: {done.stderr[-2000:]}")
        out.append(float(done.stdout) if done.stdout.strip() else wall)
    return out


# -- running --------------------------------------------------------------------------


def _ms(stats: dict[str, float]) -> dict[str, float]:
    return {k: (v * 1000 if k != "n" else v) for k, v in stats.items()}


async def _repeat(n: int, fn: Callable[[], Awaitable[object]]) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - started)
    return out


BENCHMARKS: dict[str, Callable[[Context], Awaitable[dict[str, Any]]]] = {
    "creates": bench_creates,
    "list": bench_list,
    "fanout": bench_fanout,
    "rss": bench_rss,
    "start": bench_start,
}


async def run(options: Options, only: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {"options": vars(options), "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as tmp:
        ctx = Context(options, Path(tmp))
        for name in only:
            print(f"-- {name} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            try:
                results[name] = await BENCHMARKS[name](ctx)
            finally:
                ctx.stop_all()
            results[name]["server_log_problems"] = ctx.log_problems()
            print(f"   {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=Options.objects)
    parser.add_argument("--creates", type=int, default=Options.creates)
    parser.add_argument("--kubectl-creates", type=int, default=Options.kubectl_creates)
    parser.add_argument("--watchers", type=int, default=Options.watchers)
    parser.add_argument("--writes", type=int, default=Options.writes)
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated: {', '.join(BENCHMARKS)}"
    )
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name]
    unknown = [name for name in only if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    if shutil.which("kubectl") is None:
        sys.exit("bench.apiserver needs kubectl on PATH (the peer it is compared with)")
    options = Options(
        objects=args.objects,
        creates=args.creates,
        kubectl_creates=args.kubectl_creates,
        watchers=args.watchers,
        writes=args.writes,
    )
    results = asyncio.run(run(options, only))
    results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    path = write_results("apiserver", results)
    print(report.render(results))
    print(f"\nraw results: {path}")


if __name__ == "__main__":
    main()
