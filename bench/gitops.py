"""GitOps engine benchmarks, each next to a peer measured in the same run.

    .venv/bin/python -m bench.gitops [--pushes 10] [--objects 1000] [--noops 7]
        [--kubectl-runs 3] [--apps 20] [--interval 10s] [--idle 30]
        [--only push,first,noop,apps] [--render FILE]

1. push: `recon serve --runtime docker`, a hosted repository (`recon repo create`) whose
   Application deploys one busybox Deployment of 1 replica; each of N commits changes an env
   var of its pod template; timed from the start of `git push` to the new pod Ready (pods
   watched), with the moments the hooks printed each step on the way (validated, sync
   requested, synced, healthy) and the push's exit; peer: `docker run -d` of the same image
   and command, interleaved with the pushes;
2. first: `recon serve --runtime memory` (its Node admitting every pod), an Application of
   1,000 objects (ConfigMaps, Services, Deployments in thirds) in a local git repository,
   automated sync; timed from creating the Application to Synced and Healthy (watched),
   with the server's RSS sampled every 0.1 s and its peak (VmHWM); peer: `kubectl apply -f`
   of the same objects into another namespace, timed until every Deployment is available,
   on the same server after the rest (and Flux's published figure, for reference);
3. noop: on that server, a sync requested (`operation.sync`) with nothing changed, timed
   by the controller (`operationState.durationMs`) and by the client (from sending the
   request to the watch event carrying the finished `operationState` of that request);
   peer: `kubectl apply -f DIR` of the same 1,000 files (which carry Recon's ownership
   annotation, so both sides are no-ops), interleaved, every object checked unchanged;
4. apps: `recon serve --runtime memory`, RSS idle with no Application, then with A
   Applications (each its own repository: a ConfigMap, a Service, a Deployment) synced,
   Healthy and polled on their interval for S seconds.

Every server is stopped by its PID; Docker containers (by the server's agent label and a
label of this run) and temporary directories are removed. Prints a table and writes JSON
to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.gitops_push import bench_push
from bench.gitops_report import render
from bench.gitops_repos import commit_all, init_repo, object_set
from bench.gitops_support import (
    APPS,
    RssSampler,
    app_path,
    application,
    by_name,
    create_app,
    max_pods_server,
    now_rfc3339,
    request,
    run_measured,
    settle,
    synced_healthy,
    wait_for,
)
from bench.harness import (
    Server,
    cpu_seconds,
    free_port,
    kubectl_cmd,
    machine,
    rss_mb,
    summary,
    write_results,
)
from bench.workload import Meter

JSONDict = dict[str, Any]

BIG_APP = "bench-1k"


# -- 2 and 3. a thousand objects: first sync, no-op syncs ------------------------------------


async def _first_sync(
    server: Server, session: aiohttp.ClientSession, repo: Path, revision: str
) -> JSONDict:
    await settle(server.pid)
    before = {"rss_mb": rss_mb(server.pid), "hwm_mb": rss_mb(server.pid, key="VmHWM")}
    version = (await request(session, "GET", APPS))["metadata"]["resourceVersion"]
    meter = Meter(server.pid)
    versions: list[int] = []  # the JSON size of each version of the Application on the way

    def done(app: JSONDict) -> bool:
        versions.append(len(json.dumps(app)))
        return synced_healthy(app, revision)

    with RssSampler(server.pid) as sampler:
        waiter = asyncio.ensure_future(
            wait_for(session, APPS, by_name(BIG_APP), version, done, 900)
        )
        started = time.perf_counter()
        await create_app(session, application(BIG_APP, repo, "10m"))
        done_at, app = await waiter
    status = app.get("status") or {}
    state = status.get("operationState") or {}
    peak_at, peak = sampler.peak()
    return {
        "synced_healthy_s": done_at - started,
        "sync_duration_ms": state.get("durationMs"),
        "sync_phase": state.get("phase"),
        "sync_message": state.get("message"),
        "initiated_by": state.get("initiatedBy"),
        "rss_before_mb": before["rss_mb"],
        "hwm_before_mb": before["hwm_mb"],
        "sampled_peak_mb": peak,
        "sampled_peak_at_s": peak_at,
        "hwm_after_mb": rss_mb(server.pid, key="VmHWM"),
        "rss_after_mb": rss_mb(server.pid),
        "resources": len(status.get("resources") or []),
        "app_versions": len(versions),
        "app_json_kb": versions[-1] / 1024 if versions else 0,
        **meter.read(),
    }


async def _noop_sync(server: Server, session: aiohttp.ClientSession) -> JSONDict:
    """One requested sync with nothing changed: controller and client-observed times."""
    app = await request(session, "GET", app_path(BIG_APP))
    requested = now_rfc3339()
    waiter = asyncio.ensure_future(
        wait_for(
            session,
            APPS,
            by_name(BIG_APP),
            app["metadata"]["resourceVersion"],
            lambda a: (
                ((a.get("status") or {}).get("operationState") or {}).get("requestedAt")
                == requested
            ),
            300,
        )
    )
    body = {
        "operation": {"sync": {"prune": False}, "initiatedBy": "bench", "requestedAt": requested}
    }
    meter = Meter(server.pid)
    started = time.perf_counter()
    await request(
        session,
        "PATCH",
        app_path(BIG_APP),
        data=json.dumps(body),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    done_at, found = await waiter
    cpu = meter.read()
    # Untimed: the controller removes the request after recording its result; the next
    # request waits for that, so it is never sent before the removal of this one.
    await wait_for(
        session,
        APPS,
        by_name(BIG_APP),
        found["metadata"]["resourceVersion"],
        lambda a: not a.get("operation"),
        60,
    )
    state = found["status"]["operationState"]
    actions: dict[str, int] = {}
    for entry in (state.get("syncResult") or {}).get("resources") or []:
        actions[entry.get("action", "?")] = actions.get(entry.get("action", "?"), 0) + 1
    return {
        "client_ms": (done_at - started) * 1000,
        "duration_ms": state.get("durationMs"),
        "phase": state.get("phase"),
        "actions": actions,
        "server_cpu_s": cpu["server_cpu_s"],
    }


def _kubectl_apply(server: Server, cache: Path, folder: Path) -> JSONDict:
    result = run_measured(kubectl_cmd(server, cache, "apply", "-f", str(folder)))
    lines = result.pop("stdout").splitlines()
    result["unchanged"] = sum(1 for ln in lines if ln.endswith(" unchanged"))
    result["lines"] = len(lines)
    return result


async def bench_thousand(
    workdir: Path, objects: int, noops: int, kubectl_runs: int, only: set[str]
) -> JSONDict:
    data = workdir / "thousand" / "data"
    server = max_pods_server(data, free_port(), 2 * objects + 100)
    repo = workdir / "thousand" / "repo"
    init_repo(repo)
    kinds = object_set(repo, objects, "default", f"default/{BIG_APP}")
    revision = commit_all(repo, f"{objects} objects")
    cache = workdir / "thousand" / "kube-cache"
    out: JSONDict = {"objects": objects, "kinds": kinds}
    server.start()
    try:
        async with server.session() as session:
            out["first"] = await _first_sync(server, session, repo, revision)
            print(f"first sync: {out['first']['synced_healthy_s']:.1f} s", flush=True)
            if "noop" in only:
                out["noop"] = await _noops(server, session, repo, cache, noops, kubectl_runs)
            if "first" in only:
                out["first"]["kubectl"] = await _kubectl_first(
                    server, session, workdir, objects, cache
                )
    finally:
        server.stop()
        if server.log_problems():
            out["server_log_problems"] = server.log_problems()
    return out


async def _noops(
    server: Server,
    session: aiohttp.ClientSession,
    repo: Path,
    cache: Path,
    noops: int,
    kubectl_runs: int,
) -> JSONDict:
    await settle(server.pid)
    warm = await _noop_sync(server, session)  # untimed: caches, compiled validators
    await settle(server.pid)
    kubectl_warm = await asyncio.to_thread(_kubectl_apply, server, cache, repo)
    ours: list[JSONDict] = []
    theirs: list[JSONDict] = []
    for i in range(noops):
        await settle(server.pid)
        ours.append(await _noop_sync(server, session))
        print(
            f"no-op sync: {ours[-1]['duration_ms']} ms (client {ours[-1]['client_ms']:.0f} ms) "
            f"{ours[-1]['actions']}",
            flush=True,
        )
        if i < kubectl_runs:
            await settle(server.pid)
            meter = Meter(server.pid)
            theirs.append(await asyncio.to_thread(_kubectl_apply, server, cache, repo))
            theirs[-1]["server_cpu_s"] = meter.read()["server_cpu_s"]
            print(
                f"kubectl apply: {theirs[-1]['wall_s']:.2f} s, "
                f"{theirs[-1]['unchanged']} of {theirs[-1]['lines']} unchanged",
                flush=True,
            )
    return {
        "warm_up": warm,
        "kubectl_warm_up": kubectl_warm,
        "samples": ours,
        "duration_ms": summary([float(s["duration_ms"]) for s in ours]),
        "client_ms": summary([s["client_ms"] for s in ours]),
        "server_cpu_s": summary([s["server_cpu_s"] for s in ours]),
        "all_unchanged": all(set(s["actions"]) == {"unchanged"} for s in ours),
        "kubectl_samples": theirs,
        "kubectl_ms": summary([s["wall_s"] * 1000 for s in theirs]),
        "kubectl_server_cpu_s": summary([s["server_cpu_s"] for s in theirs]),
        "kubectl_all_unchanged": all(s["unchanged"] == s["lines"] for s in theirs),
    }


async def _kubectl_first(
    server: Server, session: aiohttp.ClientSession, workdir: Path, objects: int, cache: Path
) -> JSONDict:
    """The peer of the first sync: the same kinds and counts into namespace `peer` with
    `kubectl apply -f`, timed until every Deployment is available (listed every 0.25 s)."""
    folder = workdir / "thousand" / "peer"
    kinds = object_set(folder, objects, "peer", None)
    await asyncio.to_thread(run_measured, kubectl_cmd(server, cache, "create", "ns", "peer"))
    await settle(server.pid)
    started = time.perf_counter()
    apply = asyncio.ensure_future(
        asyncio.to_thread(run_measured, kubectl_cmd(server, cache, "apply", "-f", str(folder)))
    )
    path = "/apis/apps/v1/namespaces/peer/deployments"
    while True:
        listed = await request(session, "GET", path)
        available = sum(
            1 for d in listed["items"] if ((d.get("status") or {}).get("availableReplicas") or 0)
        )
        if apply.done() and available == kinds["Deployment"]:
            break
        if time.perf_counter() - started > 900:
            raise RuntimeError(f"only {available} peer Deployments became available")
        await asyncio.sleep(0.25)
    available_s = time.perf_counter() - started
    applied = await apply
    return {
        "apply_s": applied["wall_s"],
        "apply_max_rss_mb": applied["max_rss_mb"],
        "total_s": available_s,
    }


# -- 4. RSS with many Applications -------------------------------------------------------------


async def bench_apps(workdir: Path, apps: int, interval: str, idle: float) -> JSONDict:
    data = workdir / "apps" / "data"
    server = max_pods_server(data, free_port(), apps + 100)
    out: JSONDict = {"apps": apps, "interval": interval, "idle_s": idle}
    repos = []
    for i in range(apps):
        repo = workdir / "apps" / f"repo-{i:02d}"
        init_repo(repo)
        object_set(repo, 3, "default", f"default/app-{i:02d}", prefix=f"app-{i:02d}-")
        commit_all(repo, "three objects")
        repos.append(repo)
    server.start()
    try:
        async with server.session() as session:
            await asyncio.sleep(5)
            await settle(server.pid)
            out["no_apps_rss_mb"] = rss_mb(server.pid)
            started = time.perf_counter()
            for i, repo in enumerate(repos):
                await create_app(session, application(f"app-{i:02d}", repo, interval))
            while True:
                listed = await request(session, "GET", APPS)
                healthy = sum(1 for a in listed["items"] if synced_healthy(a))
                if healthy == apps:
                    break
                if time.perf_counter() - started > 600:
                    raise RuntimeError(f"only {healthy} of {apps} Applications became healthy")
                await asyncio.sleep(0.5)
            out["all_healthy_s"] = time.perf_counter() - started
            out["synced_rss_mb"] = rss_mb(server.pid)
            cpu0 = cpu_seconds(server.pid)
            with RssSampler(server.pid, 1.0) as sampler:
                await asyncio.sleep(idle)
            out["idle_cpu_percent"] = 100 * (cpu_seconds(server.pid) - cpu0) / idle
            out["idle_rss_mb"] = rss_mb(server.pid)
            out["idle_max_rss_mb"] = sampler.peak()[1]
            out["hwm_mb"] = rss_mb(server.pid, key="VmHWM")
            listed = await request(session, "GET", APPS)
            out["still_healthy"] = sum(1 for a in listed["items"] if synced_healthy(a))
    finally:
        server.stop()
        if server.log_problems():
            out["server_log_problems"] = server.log_problems()
    return out


# -- run and report ----------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path) -> JSONDict:
    only = set(args.only.split(","))
    results: JSONDict = {
        "machine": machine(),
        "command": " ".join(["python -m bench.gitops", *sys.argv[1:]]),
    }
    if "push" in only:
        results["push"] = await bench_push(workdir, args.pushes)
    if only & {"first", "noop"}:
        results["thousand"] = await bench_thousand(
            workdir, args.objects, args.noops, args.kubectl_runs, only
        )
    if "apps" in only:
        results["apps"] = await bench_apps(workdir, args.apps, args.interval, args.idle)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--noops", type=int, default=7)
    parser.add_argument("--kubectl-runs", type=int, default=3)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--interval", default="10s", help="the 20 Applications' poll interval")
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--only", default="push,first,noop,apps")
    parser.add_argument("--render", type=Path, help="re-print a saved result and exit")
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return
    with tempfile.TemporaryDirectory(prefix="recon-bench-gitops-") as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    path = write_results("gitops", results)
    print(render(results))
    print(f"raw: {path}")


if __name__ == "__main__":
    main()
