"""Tables for the API server benchmarks: a summary against the targets, then every number.

Pure formatting of the results dict that `bench.apiserver.run` builds (and writes as JSON),
so a saved result can be re-rendered: `python -m bench.report bench/results/FILE.json`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.harness import markdown_table

__all__ = ["render", "summary_rows"]


def _ms(stats: dict[str, float]) -> str:
    return f"{stats['median']:.1f} ms"


def _spread(stats: dict[str, float], unit: str = "ms") -> str:
    return (
        f"{stats['median']:.1f} {unit} (min {stats['min']:.1f}, max {stats['max']:.1f}, "
        f"n={stats['n']:.0f})"
    )


def _faster(peer: float, ours: float) -> str:
    """`peer` and `ours` are times: how many times faster (or slower) recon is."""
    if ours <= peer:
        return f"{peer / ours:.1f}x faster"
    return f"{ours / peer:.1f}x slower"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def summary_rows(r: dict[str, Any]) -> Iterator[list[str]]:
    """One row per benchmark: measure, recon, peer, ratio, target, met."""
    if "creates" in r:
        c = r["creates"]
        ours, theirs = c["http"]["per_s"], c["kubectl_create_f"]["per_s"]
        yield [
            f"creates/s over HTTP ({c['http']['objects']}, {c['http']['concurrency']} conns)",
            f"{ours:.0f}/s",
            f"`kubectl create -f` ({c['kubectl_create_f']['objects_per_run']} in a List): "
            f"{theirs:.0f}/s",
            f"{ours / theirs:.1f}x the peer's rate",
            "≥ 500/s",
            _met(ours >= 500),
        ]
    if "list" in r:
        li = r["list"]
        ours, theirs = li["http_json_ms"]["median"], li["kubectl_json_ms"]["median"]
        yield [
            f"list {li['objects']} ConfigMaps (JSON)",
            f"{ours:.0f} ms",
            f"`kubectl get -o json`: {theirs:.0f} ms; table: "
            f"{li['kubectl_table_ms']['median']:.0f} ms",
            _faster(theirs, ours),
            "< 300 ms",
            _met(ours < 300),
        ]
    if "fanout" in r:
        f = r["fanout"]
        ours, theirs = f["last_ms"]["median"], f["kubectl_watch_ms"]["median"]
        one = f["one_http_watcher_ms"]["median"]
        yield [
            f"1 write → {f['watchers']} watchers (to the last)",
            f"{ours:.1f} ms (1 watcher: {one:.1f} ms)",
            f"`kubectl get --watch` (1 watcher) prints it: {theirs:.1f} ms",
            f"{f['watchers']} vs 1: {_faster(theirs, ours)}; 1 vs 1: {_faster(theirs, one)}",
            "< 50 ms",
            _met(ours < 50),
        ]
    if "rss" in r:
        m = r["rss"]
        idle = max(m["idle_1s_mb"], m["idle_5s_mb"])
        yield [
            "idle RSS after start",
            f"{idle:.0f} MB (after {m['objects']} objects: {m['after_objects_mb']:.0f} MB)",
            f"idle `kubectl get --watch`: {m['kubectl_watch_mb']:.0f} MB",
            f"{idle / m['kubectl_watch_mb']:.1f}x the peer",
            "< 80 MB",
            _met(idle < 80),
        ]
    if "start" in r:
        s = r["start"]
        fresh, loaded = s["fresh_ms"]["median"], s["with_objects_ms"]["median"]
        theirs = s["kubectl_version_ms"]["median"]
        yield [
            "start to ready (fresh / with objects)",
            f"{fresh:.0f} ms / {loaded:.0f} ms",
            f"`kubectl version`: {theirs:.0f} ms",
            _faster(theirs, fresh),
            "< 1 s",
            _met(fresh < 1000 and loaded < 1000),
        ]
        cold = s["cold_bytecode_fresh_ms"]["median"]
        yield [
            "start to ready, no .pyc (PYTHONDONTWRITEBYTECODE=1)",
            f"{cold:.0f} ms",
            f"`kubectl version`: {theirs:.0f} ms",
            _faster(theirs, cold),
            "< 1 s",
            _met(cold < 1000),
        ]


def _detail_rows(r: dict[str, Any]) -> Iterator[list[str]]:
    if "creates" in r:
        c = r["creates"]
        h, one, k = c["http"], c["http_one_connection"], c["kubectl_create_f"]
        yield ["creates", "HTTP, 16 connections", f"{h['per_s']:.0f}/s"]
        yield ["creates", "  request latency", _spread(h["latency_ms"])]
        yield ["creates", "  request latency p99", f"{h['latency_p99_ms']:.1f} ms"]
        yield [
            "creates",
            "  CPU during the run (server / this client)",
            f"{h['server_cpu_s']:.2f} s / {h['client_cpu_s']:.2f} s in {h['wall_s']:.2f} s",
        ]
        yield [
            "creates",
            "  server CPU per create",
            f"{h['server_cpu_ms_per_object']:.2f} ms",
        ]
        yield ["creates", "HTTP, 1 connection", f"{one['per_s']:.0f}/s"]
        yield ["creates", "  request latency", _spread(one["latency_ms"])]
        yield ["creates", "kubectl create -f (median of 3 runs)", f"{k['per_s']:.0f}/s"]
        yield [
            "creates",
            "  server CPU per create under kubectl",
            f"{k['server_cpu_ms_per_object']:.2f} ms",
        ]
    if "list" in r:
        li = r["list"]
        yield [
            "list",
            f"HTTP GET, JSON ({li['http_json_bytes'] / 1e6:.1f} MB)",
            _spread(li["http_json_ms"]),
        ]
        yield [
            "list",
            "  server CPU per GET",
            f"{li['http_json_server_cpu_ms_per_get']:.1f} ms",
        ]
        yield [
            "list",
            f"HTTP GET, Table ({li['http_table_bytes'] / 1e6:.1f} MB)",
            _spread(li["http_table_ms"]),
        ]
        yield ["list", "kubectl get configmaps -o json", _spread(li["kubectl_json_ms"])]
        yield ["list", "kubectl get configmaps (table)", _spread(li["kubectl_table_ms"])]
    if "fanout" in r:
        f = r["fanout"]
        yield ["fan-out", f"PATCH → last of {f['watchers']} watchers", _spread(f["last_ms"])]
        yield ["fan-out", f"PATCH → first of {f['watchers']} watchers", _spread(f["first_ms"])]
        yield ["fan-out", "  the PATCH's own round trip", _spread(f["patch_ms"])]
        yield [
            "fan-out",
            "  CPU during the writes (server / this client)",
            f"{f['server_cpu_s']:.2f} s / {f['client_cpu_s']:.2f} s",
        ]
        yield ["fan-out", "PATCH → 1 HTTP watcher", _spread(f["one_http_watcher_ms"])]
        yield ["fan-out", "PATCH → kubectl get --watch prints", _spread(f["kubectl_watch_ms"])]
    if "rss" in r:
        m = r["rss"]
        yield ["RSS", "idle, 1 s after ready", f"{m['idle_1s_mb']:.1f} MB"]
        yield ["RSS", "idle, 5 s after ready", f"{m['idle_5s_mb']:.1f} MB"]
        yield ["RSS", f"after creating {m['objects']} objects", f"{m['after_objects_mb']:.1f} MB"]
        yield ["RSS", "  peak (VmHWM)", f"{m['peak_mb']:.1f} MB"]
        yield [
            "RSS",
            f"restarted on {m['objects']} objects, 1 s after ready",
            f"{m['restarted_with_objects_mb']:.1f} MB",
        ]
        yield ["RSS", "idle kubectl get --watch", f"{m['kubectl_watch_mb']:.1f} MB"]
    if "start" in r:
        s = r["start"]
        yield ["start", "fresh data dir", _spread(s["fresh_ms"])]
        yield ["start", "  python -c pass (the interpreter alone)", _spread(s["python_bare_ms"])]
        yield ["start", "  importing reconciler.cli.main (in-process)", _spread(s["import_cli_ms"])]
        yield ["start", f"with {s['objects']} objects", _spread(s["with_objects_ms"])]
        yield ["start", "fresh, no bytecode cache", _spread(s["cold_bytecode_fresh_ms"])]
        yield ["start", "SIGTERM to exit", _spread(s["stop_ms"])]
        yield ["start", "kubectl version", _spread(s["kubectl_version_ms"])]


def render(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    head = (
        f"{m.get('date', '?')}: {m.get('nproc', '?')} CPUs, Python {m.get('python', '?')}, "
        f"{m.get('kubectl', '?')}, load average {' '.join(m.get('loadavg_start', []))} → "
        f"{' '.join(m.get('loadavg_end', []))}"
    )
    summary = markdown_table(
        ["measure", "recon", "peer (same run)", "ratio", "target", "met"],
        summary_rows(results),
    )
    detail = markdown_table(["benchmark", "measure", "value"], _detail_rows(results))
    problems = [
        f"- {name}: {line}"
        for name, section in results.items()
        if isinstance(section, dict)
        for line in section.get("server_log_problems", [])
    ]
    logs = (
        "server logs: no errors" if not problems else "server log errors:\n" + "\n".join(problems)
    )
    return f"{head}\n\n{summary}\n\n{detail}\n\n{logs}"


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())))
