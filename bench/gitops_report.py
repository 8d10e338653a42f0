"""Tables for the GitOps benchmarks (`bench.gitops`): the targets, then every number.

Pure formatting of the results dict `bench.gitops.run` builds and writes as JSON, so a saved
run can be re-printed: `python -m bench.gitops --render bench/results/FILE.json`.
"""

from __future__ import annotations

from typing import Any

from bench.harness import markdown_table

__all__ = ["render"]

JSONDict = dict[str, Any]


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _rows(r: JSONDict) -> list[list[str]]:
    rows = []
    if "push" in r:
        p = r["push"]
        ours, peer = p["pod_ready_s"]["median"], p["docker_run_s"]["median"]
        rows.append(
            [
                f"`git push` → new pod Ready (docker), median of {p['pushes']}",
                f"{ours:.2f} s (push returns {p['push_exit_s']['median']:.2f} s)",
                f"`docker run -d`: {peer:.2f} s",
                f"{ours / peer:.1f}x",
                "≤ 3 s",
                _met(ours <= 3),
            ]
        )
    t = r.get("thousand") or {}
    if "noop" in t:
        n = t["noop"]
        ctrl, client = n["duration_ms"]["median"], n["client_ms"]["median"]
        peer = n["kubectl_ms"]["median"]
        rows.append(
            [
                f"no-op sync of {t['objects']} objects, median of {n['duration_ms']['n']:.0f}",
                f"{ctrl:.0f} ms (client-observed {client:.0f} ms)",
                f"`kubectl apply -f DIR`: {peer:.0f} ms",
                f"{peer / client:.1f}x faster",
                "< 1 s, ≥ 5x",
                _met(client < 1000 and ctrl < 1000 and peer / client >= 5),
            ]
        )
    if "first" in t:
        f = t["first"]
        ours, peak = f["synced_healthy_s"], max(f["hwm_after_mb"], f["sampled_peak_mb"])
        k = f.get("kubectl")
        peer = (
            f"`kubectl apply -f` → available: {k['total_s']:.1f} s; Flux (published): 256 s, 183 MB"
            if k
            else "Flux (published): 256 s, 175 MiB = 183 MB"
        )
        rows.append(
            [
                f"first sync of {t['objects']} objects → Synced and Healthy (memory)",
                f"{ours:.1f} s, peak RSS {peak:.0f} MB",
                peer,
                f"{k['total_s'] / ours:.1f}x faster than kubectl" if k else "—",
                "< 20 s, < 150 MB",
                _met(ours < 20 and peak < 150),
            ]
        )
    if "apps" in r:
        a = r["apps"]
        ours = max(a["idle_rss_mb"], a["idle_max_rss_mb"])
        rows.append(
            [
                f"RSS, {a['apps']} Applications synced, idle {a['idle_s']:.0f} s",
                f"{ours:.0f} MB",
                f"the same server with no Application: {a['no_apps_rss_mb']:.0f} MB",
                f"+{ours - a['no_apps_rss_mb']:.0f} MB",
                "< 150 MB",
                _met(ours < 150),
            ]
        )
    return rows


def _spread(s: JSONDict, scale: float = 1.0, unit: str = "s", digits: int = 2) -> str:
    return (
        f"{s['median'] * scale:.{digits}f} {unit} ({s['min'] * scale:.{digits}f}-"
        f"{s['max'] * scale:.{digits}f})"
    )


def _details(r: JSONDict) -> list[list[str]]:
    rows = []
    if "push" in r:
        p = r["push"]
        for key, what in (
            ("validated", "pre-receive hook printed: valid"),
            ("sync_requested", "post-receive hook printed: syncing (sync requested)"),
            ("synced", "post-receive hook printed: sync Succeeded"),
            ("pod_ready", "new pod Ready (watched)"),
            ("healthy", "post-receive hook printed: health Healthy"),
            ("push_exit", "`git push` exited"),
        ):
            rows.append(["push", f"from push start: {what}", _spread(p[f"{key}_s"])])
        rows.append(["push", "controller's durationMs", _spread(p["sync_duration_ms"], 1, "ms", 0)])
        rows.append(["push", "`docker run -d`", _spread(p["docker_run_s"])])
    t = r.get("thousand") or {}
    if "noop" in t:
        n = t["noop"]
        rows.append(["no-op", "controller's durationMs", _spread(n["duration_ms"], 1, "ms", 0)])
        rows.append(["no-op", "client-observed", _spread(n["client_ms"], 1, "ms", 0)])
        rows.append(["no-op", "server CPU per sync", _spread(n["server_cpu_s"])])
        rows.append(["no-op", "every object unchanged", str(n["all_unchanged"])])
        rows.append(["no-op", "`kubectl apply -f DIR`", _spread(n["kubectl_ms"], 1, "ms", 0)])
        rows.append(["no-op", "  server CPU per kubectl run", _spread(n["kubectl_server_cpu_s"])])
        rows.append(["no-op", "  every object unchanged", str(n["kubectl_all_unchanged"])])
    if "first" in t:
        f = t["first"]
        rows.append(
            ["first", "Application created → Synced and Healthy", f"{f['synced_healthy_s']:.2f} s"]
        )
        rows.append(["first", "  of which the sync (durationMs)", f"{f['sync_duration_ms']} ms"])
        rows.append(
            [
                "first",
                "  server CPU / wall",
                f"{f['server_cpu_s']:.1f} s / {f['wall_s']:.1f} s",
            ]
        )
        rows.append(
            [
                "first",
                "RSS before → after",
                f"{f['rss_before_mb']:.0f} → {f['rss_after_mb']:.0f} MB",
            ]
        )
        rows.append(
            [
                "first",
                "peak RSS (sampled / VmHWM)",
                f"{f['sampled_peak_mb']:.0f} MB at {f['sampled_peak_at_s']:.1f} s / "
                f"{f['hwm_after_mb']:.0f} MB",
            ]
        )
        k = f.get("kubectl")
        if k:
            rows.append(
                [
                    "first",
                    "`kubectl apply -f` (peer)",
                    f"{k['apply_s']:.1f} s, {k['apply_max_rss_mb']:.0f} MB",
                ]
            )
            rows.append(["first", "  to every Deployment available", f"{k['total_s']:.1f} s"])
    if "apps" in r:
        a = r["apps"]
        rows.append(
            ["apps", "Applications created → all Synced and Healthy", f"{a['all_healthy_s']:.1f} s"]
        )
        rows.append(["apps", "RSS: none / synced / idle end / idle max", (
            f"{a['no_apps_rss_mb']:.0f} / {a['synced_rss_mb']:.0f} / {a['idle_rss_mb']:.0f} / "
            f"{a['idle_max_rss_mb']:.0f} MB"
        )])  # fmt: skip
        rows.append(
            [
                "apps",
                f"CPU while idle (interval {a['interval']})",
                f"{a['idle_cpu_percent']:.1f} % of a core",
            ]
        )
    return rows


def render(r: JSONDict) -> str:
    summary_table = markdown_table(
        ["measure", "recon", "peer (same run)", "ratio", "target", "met"], _rows(r)
    )
    detail = markdown_table(["benchmark", "measure", "value"], _details(r))
    problems = [
        f"- {name}: {line}"
        for name, section in r.items()
        if isinstance(section, dict)
        for line in section.get("server_log_problems", [])
    ]
    logs = (
        "server logs: no errors" if not problems else "server log errors:\n" + "\n".join(problems)
    )
    return f"{summary_table}\n\n{detail}\n\n{logs}"
