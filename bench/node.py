"""Node agent benchmarks on the real Docker engine, each next to `docker` itself.

    .venv/bin/python -m bench.node [--starts 20] [--pods 50] [--idle 30]

1. pod start: POST a one-container busybox Pod, time until the API reports it Running and
   Ready (watched, not polled), median over N; peer: `docker run -d` of the same image and
   command (which returns once the container has started), median over N; and, like for
   like, a pause container plus the app container joining its namespaces (two `docker run`);
   and the engine floor: the Docker API calls any implementation of the pod design needs
   (a pause container on the namespace network and the services network, then the app
   container joining it), made straight through the SDK, next to the SDK's create + start
   of the same busybox on the default bridge (what `docker run -d` asks of the engine);
2. burst: P pods POSTed at once, time until all are Running and Ready; peer: P `docker run -d`
   at once (P parallel CLI processes);
3. idle CPU: CPU seconds used by `recon serve` (API server, controllers and node agent
   together: an upper bound for the agent) over S seconds while the P pods idle, as % of
   one core; peer: dockerd over the same window.

One `recon serve --runtime docker` on a free loopback port with a fresh data dir; every
container is removed at the end (pods by their server's agent label, docker peers by a
label of this run). Prints a table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import (
    Server,
    cpu_seconds,
    free_port,
    machine,
    markdown_table,
    summary,
    write_results,
)
from reconciler.embedded import agent_id_for

IMAGE = "recon.local/busybox:latest"
PAUSE = "recon.local/pause:latest"


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "c",
                    "image": IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                }
            ],
        },
    }


def _ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


async def _create_and_wait(session: aiohttp.ClientSession, names: list[str]) -> float:
    """POST the pods (concurrently), return seconds until the last one is Ready."""
    path = "/api/v1/namespaces/default/pods"
    async with session.get(path) as listed:
        version = (await listed.json())["metadata"]["resourceVersion"]
    waiting = set(names)
    started = time.perf_counter()

    async def post(name: str) -> None:
        async with session.post(path, json=_pod(name)) as response:
            if response.status != 201:
                raise RuntimeError(f"create {name}: {response.status} {await response.text()}")

    await asyncio.gather(*(post(n) for n in names))
    params = {"watch": "1", "resourceVersion": version}
    async with session.get(path, params=params) as watch:
        async for line in watch.content:
            event = json.loads(line)
            obj = event["object"]
            if obj.get("metadata", {}).get("name") in waiting and _ready(obj):
                waiting.discard(obj["metadata"]["name"])
                if not waiting:
                    return time.perf_counter() - started
    raise RuntimeError(f"watch ended with {sorted(waiting)} not ready")


def _docker_run(label: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["docker", "run", "-d", "--label", label, IMAGE, "sleep", "3600"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def _docker_pod(label: str) -> float:
    """The like-for-like peer: what a pod is on the engine, by hand (a pause container, then
    the app container joining its network namespace), as two `docker run -d`."""
    started = time.perf_counter()
    sandbox = subprocess.run(
        ["docker", "run", "-d", "--ipc=shareable", "--label", label, PAUSE],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [
            "docker", "run", "-d", "--label", label, f"--network=container:{sandbox}",
            f"--ipc=container:{sandbox}", IMAGE, "sleep", "3600",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def _engine_floor(label: str) -> tuple[float, float]:
    """(seconds for the engine calls a pod needs, seconds for a plain create + start), no
    CLI and no Recon in the way: the least any sandbox-per-pod design can cost here."""
    import docker  # type: ignore[import-untyped, unused-ignore]  # the runtime's SDK

    api = docker.from_env().api
    labels = dict([label.split("=", 1)])
    started = time.perf_counter()
    sandbox = api.create_container(
        PAUSE,
        labels=labels,
        host_config=api.create_host_config(network_mode="recon-default", ipc_mode="shareable"),
    )["Id"]
    api.connect_container_to_network(sandbox, "recon-services")
    api.start(sandbox)
    joined = f"container:{sandbox}"
    app = api.create_container(
        IMAGE,
        ["sleep", "3600"],
        labels=labels,
        host_config=api.create_host_config(network_mode=joined, ipc_mode=joined),
    )["Id"]
    api.start(app)
    pod = time.perf_counter() - started
    started = time.perf_counter()
    plain = api.create_container(IMAGE, ["sleep", "3600"], labels=labels)["Id"]
    api.start(plain)
    return pod, time.perf_counter() - started


def _docker_burst(label: str, count: int) -> float:
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["docker", "run", "-d", "--label", label, IMAGE, "sleep", "3600"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError("docker run failed")
    return time.perf_counter() - started


def remove_by_label(label: str) -> None:
    """Every container (running or not) carrying `label`, removed."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


def remove_docker_leftovers(data_dir: Path, agent_label: str, run_label: str) -> None:
    """What a run left on the engine: its containers (by label), the networks if now unused
    (Docker refuses to remove one still in use), its secret tmpfs dirs."""
    remove_by_label(agent_label)
    remove_by_label(run_label)
    for network in ("recon-default", "recon-services"):
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
    shutil.rmtree(Path("/dev/shm/recon") / agent_id_for(data_dir.resolve()), True)


def _dockerd_pid() -> int:
    out = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=False)
    return int(out.stdout.split()[0]) if out.stdout.strip() else 0


async def _delete_all(session: aiohttp.ClientSession) -> None:
    async with session.delete("/api/v1/namespaces/default/pods") as response:
        await response.read()


async def run(starts: int, pods: int, idle: float, workdir: Path) -> dict[str, Any]:
    server = Server(
        workdir / "data", free_port(), runtime="docker", extra_args=("--pause-image", PAUSE)
    )
    run_label = f"recon-bench={uuid.uuid4().hex[:8]}"
    agent_label = f"recon.dev/agent={agent_id_for((workdir / 'data').resolve())}"
    results: dict[str, Any] = {"machine": machine(), "starts": starts, "pods": pods}
    server.start()
    try:
        async with server.session() as session:
            await _create_and_wait(session, ["warm-up"])  # network and image caches
            ours: list[float] = []
            peer: list[float] = []
            pair: list[float] = []
            floor: list[float] = []
            plain: list[float] = []
            for i in range(starts):
                ours.append(await _create_and_wait(session, [f"start-{i}"]))
                peer.append(await asyncio.to_thread(_docker_run, run_label))
                pair.append(await asyncio.to_thread(_docker_pod, run_label))
                pod_calls, plain_calls = await asyncio.to_thread(_engine_floor, run_label)
                floor.append(pod_calls)
                plain.append(plain_calls)
            results["pod_start"] = {
                "recon": summary(ours),
                "docker_run": summary(peer),
                "docker_pause_pair": summary(pair),
                "engine_pod_calls": summary(floor),
                "engine_plain_calls": summary(plain),
            }
            await _delete_all(session)
            await asyncio.sleep(3)
            remove_by_label(run_label)
            burst = await _create_and_wait(session, [f"burst-{i}" for i in range(pods)])
            burst_peer = await asyncio.to_thread(_docker_burst, run_label, pods)
            results["burst"] = {"recon_s": burst, "docker_s": burst_peer}
            remove_by_label(run_label)
            await asyncio.sleep(2)
            dockerd = _dockerd_pid()
            cpu0, dcpu0 = cpu_seconds(server.pid), cpu_seconds(dockerd) if dockerd else 0.0
            await asyncio.sleep(idle)
            cpu1, dcpu1 = cpu_seconds(server.pid), cpu_seconds(dockerd) if dockerd else 0.0
            results["idle"] = {
                "seconds": idle,
                "recon_percent": 100 * (cpu1 - cpu0) / idle,
                "dockerd_percent": 100 * (dcpu1 - dcpu0) / idle,
            }
            await _delete_all(session)
    finally:
        server.stop()
        await asyncio.to_thread(remove_docker_leftovers, workdir / "data", agent_label, run_label)
        problems = server.log_problems()
        if problems:
            results["server_log_problems"] = problems
    return results


def render(r: dict[str, Any]) -> str:
    start = r["pod_start"]
    ratio = start["recon"]["median"] / start["docker_run"]["median"]
    rows = [
        [
            f"pod create → Ready, median of {r['starts']}",
            f"{start['recon']['median'] * 1000:.0f} ms",
            f"`docker run -d`: {start['docker_run']['median'] * 1000:.0f} ms",
            f"{ratio:.2f}x (target <= 1.5x)",
        ],
    ]
    if "docker_pause_pair" in start:
        pair = start["docker_pause_pair"]["median"]
        rows.append(
            [
                "the same, like for like",
                f"{start['recon']['median'] * 1000:.0f} ms",
                f"pause + joined container, 2 `docker run -d`: {pair * 1000:.0f} ms",
                f"{start['recon']['median'] / pair:.2f}x",
            ]
        )
    if "engine_pod_calls" in start:
        floor = start["engine_pod_calls"]["median"]
        plain = start["engine_plain_calls"]["median"]
        rows.append(
            [
                "engine floor: a pod's Docker calls (SDK, no Recon)",
                f"{floor * 1000:.0f} ms",
                f"create + start on the default bridge (SDK): {plain * 1000:.0f} ms",
                f"{floor / plain:.2f}x (the least any sandbox design costs)",
            ]
        )
    rows += [
        [
            f"{r['pods']} pods at once → all Ready",
            f"{r['burst']['recon_s']:.1f} s",
            f"{r['pods']} parallel `docker run -d`: {r['burst']['docker_s']:.1f} s",
            f"target < 30 s: {'met' if r['burst']['recon_s'] < 30 else 'missed'}",
        ],
        [
            f"CPU while {r['pods']} pods idle ({r['idle']['seconds']:.0f} s)",
            f"{r['idle']['recon_percent']:.2f} % of a core",
            f"dockerd: {r['idle']['dockerd_percent']:.2f} %",
            f"target < 2 %: {'met' if r['idle']['recon_percent'] < 2 else 'missed'}",
        ],
    ]
    return markdown_table(["benchmark", "recon", "peer (same run)", "result"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recon-bench-node-") as tmp:
        results = asyncio.run(run(args.starts, args.pods, args.idle, Path(tmp)))
    path = write_results("node", results)
    print(render(results))
    print(f"raw: {path}")
    if "server_log_problems" in results:
        print("server log problems:", *results["server_log_problems"], sep="\n  ")


if __name__ == "__main__":
    main()
