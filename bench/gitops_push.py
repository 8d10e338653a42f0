"""GitOps benchmark 1: from the start of `git push` to the new pod Ready, on Docker.

Run through `python -m bench.gitops --only push` (see `bench.gitops` for what is measured
and its peer). A hosted repository (`recon repo create`) whose Application deploys one
busybox Deployment of 1 replica; each push changes its pod template (an env var), so a new
pod must start. The hooks run with the server's environment (the same warm bytecode cache).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.gitops_repos import GIT_IDENTITY, IMAGE, commit_all, git, init_repo, push_app
from bench.gitops_support import PODS, app_path, pod_ready, request, wait_for
from bench.harness import Server, free_port, server_env, summary
from bench.node import remove_by_label, remove_docker_leftovers
from reconciler.embedded import agent_id_for

__all__ = ["bench_push"]

JSONDict = dict[str, Any]

PAUSE = "recon.local/pause:latest"
PUSH_APP = "bench-push"


_MARKERS = {
    "validated": " is valid (",
    "sync_requested": "recon: syncing ",
    "synced": "recon: sync Succeeded",
    "healthy": "recon: health Healthy",
}


async def _push(
    work: Path, env: dict[str, str], session: aiohttp.ClientSession, stamp: int
) -> JSONDict:
    """Commit stamp `stamp`, push it; the timeline in seconds from the start of the push."""
    push_app(work, PUSH_APP, stamp)
    sha = commit_all(work, f"stamp {stamp}")
    listed = await request(session, "GET", PODS, params={"labelSelector": f"app={PUSH_APP}"})
    old = {p["metadata"]["name"] for p in listed["items"]}
    version = listed["metadata"]["resourceVersion"]
    ready = asyncio.ensure_future(
        wait_for(
            session,
            PODS,
            {"labelSelector": f"app={PUSH_APP}"},
            version,
            lambda pod: pod["metadata"]["name"] not in old and pod_ready(pod),
            120,
        )
    )
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "git", "push", "-q", "recon", "main", cwd=work, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    timeline: JSONDict = {}
    lines = []
    assert proc.stderr is not None
    async for raw in proc.stderr:
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        for key, marker in _MARKERS.items():
            if marker in line and key not in timeline:
                timeline[key] = time.perf_counter() - started
    await proc.wait()
    timeline["push_exit"] = time.perf_counter() - started
    if proc.returncode != 0 or "healthy" not in timeline:
        ready.cancel()
        raise RuntimeError(f"push of stamp {stamp} did not deploy: {lines[-20:]}")
    ready_at, _ = await ready
    timeline["pod_ready"] = ready_at - started
    app = await request(session, "GET", app_path(PUSH_APP))
    state = (app.get("status") or {}).get("operationState") or {}
    timeline["sync_duration_ms"] = state.get("durationMs")
    timeline["revision_ok"] = (state.get("syncResult") or {}).get("revision") == sha
    return timeline


async def _one_pod_left(session: aiohttp.ClientSession) -> None:
    """Wait until the old pod of the rollout is gone (only the new one is left)."""
    for _ in range(600):
        listed = await request(session, "GET", PODS, params={"labelSelector": f"app={PUSH_APP}"})
        if len(listed["items"]) == 1:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the old pod was not deleted within 60 s")


def _docker_run(label: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["docker", "run", "-d", "--label", label, IMAGE, "sleep", "3600"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


async def bench_push(workdir: Path, pushes: int) -> JSONDict:
    data = workdir / "push" / "data"
    server = Server(
        data,
        free_port(),
        runtime="docker",
        extra_args=("--pause-image", PAUSE, "--proxy-image", IMAGE),
    )
    run_label = f"recon-bench-gitops={uuid.uuid4().hex[:8]}"
    agent_label = f"recon.dev/agent={agent_id_for(data.resolve())}"
    # The hooks run with the server's environment: the same warm bytecode cache.
    env = {**server_env(server.pycache, data), **GIT_IDENTITY}
    out: JSONDict = {"pushes": pushes}
    server.start()
    try:
        await asyncio.to_thread(_repo_create, data, env)
        work = workdir / "push" / "work"
        init_repo(work)
        git(work, "remote", "add", "recon", str(data.resolve() / "repos" / f"{PUSH_APP}.git"))
        async with server.session() as session:
            await _push(work, env, session, 0)  # first deploy: networks, image, caches
            await _one_pod_left(session)
            samples: list[JSONDict] = []
            peer: list[float] = []
            for stamp in range(1, pushes + 1):
                samples.append(await _push(work, env, session, stamp))
                await _one_pod_left(session)
                peer.append(await asyncio.to_thread(_docker_run, run_label))
                await asyncio.to_thread(remove_by_label, run_label)
                print(
                    f"push {stamp}: pod Ready {samples[-1]['pod_ready']:.2f} s, "
                    f"docker run {peer[-1]:.2f} s",
                    flush=True,
                )
        out["samples"] = samples
        out["docker_run_s"] = summary(peer)
        out["docker_run_samples"] = peer
        for key in ("validated", "sync_requested", "synced", "pod_ready", "healthy", "push_exit"):
            out[f"{key}_s"] = summary([s[key] for s in samples if key in s])
        out["sync_duration_ms"] = summary([float(s["sync_duration_ms"] or 0) for s in samples])
    finally:
        server.stop()
        await asyncio.to_thread(remove_docker_leftovers, data, agent_label, run_label)
        if server.log_problems():
            out["server_log_problems"] = server.log_problems()
    return out


def _repo_create(data: Path, env: dict[str, str]) -> None:
    """`recon repo create` (retried while the server is still installing the CRD)."""
    cmd = [sys.executable, "-m", "reconciler.cli", "repo", "create", PUSH_APP]
    for _ in range(30):
        done = subprocess.run(
            [*cmd, "--data-dir", str(data)], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"recon repo create failed: {done.stderr[-2000:]}")
