"""Controller scale benchmarks: Deployments on the in-memory runtime (the control plane alone,
as kwok measures it), next to the same scenarios on real Docker at a smaller size.

    .venv/bin/python -m bench.controllers [--replicas 1000] [--deployments 100] [--per 3]
        [--idle 30] [--docker-replicas 20] [--docker-deployments 10] [--docker-per 2]
        [--only memory,docker]

For each runtime, one `recon serve --runtime RUNTIME --no-gitops` on a free loopback port
with a fresh data dir (on memory with `--max-pods`, so its one Node admits
every pod), and three scenarios in namespace `bench-ctl`:

1. scale: one Deployment of R replicas POSTed; time until every one of its pods is Ready
   (pods watched) and the Deployment reports `readyReplicas == R` (watched), with the
   moments all R pods existed and were bound on the way; checked afterwards by a LIST;
2. rollout: D Deployments of P replicas POSTed at once, timed until all are complete; then
   every pod template changed at once (an env var, by strategic merge patch, as `kubectl
   set env` does), timed until every rollout is complete as `kubectl rollout status`
   decides (observedGeneration current, updatedReplicas == spec.replicas == replicas ==
   availableReplicas); checked afterwards by `kubectl rollout status -l` itself;
3. idle: CPU of `recon serve` over S seconds with all of it in place (% of one core), and how
   many writes the store took in that time (its revision).

The benchmark watches, never polls. Every Docker container of the run is removed at the end.
Prints a table and writes JSON to bench/results/ (`--render FILE` re-prints a saved run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import (
    Server,
    cpu_seconds,
    free_port,
    kubectl_cmd,
    machine,
    markdown_table,
    write_results,
)
from bench.workload import Meter
from reconciler.embedded import agent_id_for

IMAGE = "recon.local/busybox:latest"
PAUSE = "recon.local/pause:latest"
NAMESPACE = "bench-ctl"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
REPLICASETS = f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets"
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
WAIT_S = 600.0  # the longest any scenario may take before the benchmark gives up
NO_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_read=None)

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    replicas: int
    deployments: int
    per: int
    idle: float


# -- objects -------------------------------------------------------------------------------


def deployment(name: str, group: str, replicas: int, roll: str = "1") -> JSONDict:
    """A Deployment of busybox `sleep`; `roll` is an env var the rollout scenario changes."""
    labels = {"app": name, "bench": group}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"bench": group}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "c",
                            "image": IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sleep", "3600"],
                            "env": [{"name": "ROLL", "value": roll}],
                        }
                    ],
                },
            },
        },
    }


def pod_ready(pod: JSONDict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def rollout_complete(d: JSONDict) -> bool:
    """`kubectl rollout status` says "successfully rolled out" (its DeploymentStatusViewer)."""
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 1)):
        return False
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and (
            condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return False
    updated = int(status.get("updatedReplicas", 0))
    return (
        updated >= int(spec.get("replicas", 1))
        and int(status.get("replicas", 0)) <= updated
        and int(status.get("availableReplicas", 0)) >= updated
    )


def roll_value(d: JSONDict) -> str:
    containers = (((d.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or []}
    return str(env.get("ROLL", ""))


# -- watching --------------------------------------------------------------------------------


@dataclass
class Watched:
    """The latest state of every object at `path` (one LIST, then one watch stream from its
    resourceVersion), with named marks: the names for which each mark's test holds, and the
    moment each first did. `when` resolves at the first event after which a predicate holds;
    predicates run after every event, so they must be cheap (count marks)."""

    session: aiohttp.ClientSession
    path: str
    selector: str
    tests: dict[str, Callable[[JSONDict], bool]]
    objects: dict[str, JSONDict] = field(default_factory=dict)
    marked: dict[str, dict[str, float]] = field(default_factory=dict)
    events: int = 0
    _waiters: list[tuple[Callable[[Watched], bool], asyncio.Future[float]]] = field(
        default_factory=list
    )
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.marked = {name: {} for name in self.tests}
        async with self.session.get(self.path, params={"labelSelector": self.selector}) as r:
            r.raise_for_status()
            listed = await r.json()
        for item in listed["items"]:
            self._apply(item)
        version = listed["metadata"]["resourceVersion"]
        self._task = asyncio.get_running_loop().create_task(self._watch(version))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def count(self, mark: str) -> int:
        return len(self.marked[mark])

    def remark(self, mark: str) -> None:
        """Test `mark` afresh on every object (after its test changed)."""
        self.marked[mark] = {}
        now = time.perf_counter()
        for name, obj in self.objects.items():
            if self.tests[mark](obj):
                self.marked[mark][name] = now

    def when(self, predicate: Callable[[Watched], bool]) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if predicate(self):
            future.set_result(time.perf_counter())
        else:
            self._waiters.append((predicate, future))
        return future

    def _apply(self, obj: JSONDict, deleted: bool = False) -> None:
        name = str(obj["metadata"]["name"])
        now = time.perf_counter()
        if deleted:
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj
        for mark, test in self.tests.items():
            if not deleted and test(obj):
                self.marked[mark].setdefault(name, now)
            else:
                self.marked[mark].pop(name, None)

    def _settle(self, error: BaseException | None = None) -> None:
        now = time.perf_counter()
        waiting = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            elif predicate(self):
                future.set_result(now)
            else:
                waiting.append((predicate, future))
        self._waiters = waiting

    async def _watch(self, version: str) -> None:
        params = {"labelSelector": self.selector, "watch": "1", "resourceVersion": version}
        try:
            async with self.session.get(self.path, params=params, timeout=NO_TIMEOUT) as r:
                r.raise_for_status()
                async for line in r.content:
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch {self.path}: {event['object']}")
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.events += 1
                        self._apply(event["object"], deleted=event["type"] == "DELETED")
                        self._settle()
            raise RuntimeError(f"watch {self.path} ended")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # every waiter hears of it, rather than timing out
            self._settle(e)
            raise


async def _wait(futures: Iterable[asyncio.Future[float]], what: str) -> list[float]:
    try:
        return list(await asyncio.wait_for(asyncio.gather(*futures), WAIT_S))
    except TimeoutError as e:
        raise RuntimeError(f"{what}: not done within {WAIT_S:.0f} s") from e


# -- API helpers ---------------------------------------------------------------------------


async def _request(
    session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> JSONDict:
    async with session.request(method, path, **kwargs) as response:
        body = await response.text()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {body[:500]}")
        return json.loads(body) if body else {}


async def _store_revision(session: aiohttp.ClientSession) -> int:
    """The store's global revision (a list's resourceVersion): it moves on every write."""
    listed = await _request(session, "GET", "/api/v1/namespaces")
    return int(listed["metadata"]["resourceVersion"])


async def _check_pods(session: aiohttp.ClientSession, selector: str) -> JSONDict:
    """What a LIST says after a scenario: pods not being deleted, and how many are Ready."""
    listed = await _request(session, "GET", PODS, params={"labelSelector": selector})
    live = [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]
    return {"pods": len(live), "ready": sum(1 for p in live if pod_ready(p))}


# -- scenarios -----------------------------------------------------------------------------


async def scale(server: Server, session: aiohttp.ClientSession, replicas: int) -> JSONDict:
    """One Deployment of `replicas` replicas, from POST to every pod Ready."""
    pods = Watched(
        session,
        PODS,
        "app=big",
        {"bound": lambda p: bool((p.get("spec") or {}).get("nodeName")), "ready": pod_ready},
    )
    deployments = Watched(
        session,
        DEPLOYMENTS,
        "bench=scale",
        {"ready": lambda d: int((d.get("status") or {}).get("readyReplicas", 0)) >= replicas},
    )
    await pods.start()
    await deployments.start()
    try:
        meter = Meter(server.pid)
        started = time.perf_counter()
        await _request(session, "POST", DEPLOYMENTS, json=deployment("big", "scale", replicas))
        created, bound, ready, reported = await _wait(
            [
                pods.when(lambda w: len(w.objects) >= replicas),
                pods.when(lambda w: w.count("bound") >= replicas),
                pods.when(lambda w: w.count("ready") >= replicas),
                deployments.when(lambda w: w.count("ready") >= 1),
            ],
            f"a Deployment of {replicas} replicas",
        )
        cpu = meter.read()
        ready_times = sorted(pods.marked["ready"].values())
    finally:
        await pods.stop()
        await deployments.stop()
    check = await _check_pods(session, "app=big")
    if check["pods"] != replicas or check["ready"] != replicas:
        raise RuntimeError(f"after scaling to {replicas}, a LIST says {check}")
    return {
        "replicas": replicas,
        "all_ready_s": max(ready, reported) - started,
        "all_pods_created_s": created - started,
        "all_pods_bound_s": bound - started,
        "all_pods_ready_s": ready - started,
        "deployment_ready_s": reported - started,
        "first_pod_ready_s": ready_times[0] - started,
        "median_pod_ready_s": statistics.median(ready_times) - started,
        "pod_events": pods.events,
        "deployment_events": deployments.events,
        **cpu,
        "check": check,
    }


async def rollout(
    server: Server, session: aiohttp.ClientSession, count: int, per: int, cache: Path
) -> JSONDict:
    """`count` Deployments of `per` replicas: created, available, then all rolled at once."""
    wanted = {"roll": "1"}
    deployments = Watched(
        session,
        DEPLOYMENTS,
        "bench=roll",
        {"done": lambda d: roll_value(d) == wanted["roll"] and rollout_complete(d)},
    )
    names = [f"roll-{i}" for i in range(count)]
    await deployments.start()
    try:
        meter = Meter(server.pid)
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _request(session, "POST", DEPLOYMENTS, json=deployment(n, "roll", per))
                for n in names
            )
        )
        posted = time.perf_counter()
        (available,) = await _wait(
            [deployments.when(lambda w: w.count("done") >= count)],
            f"{count} Deployments of {per}",
        )
        create_cpu = meter.read()
        await asyncio.sleep(1.0)  # let the last pods' status writes settle before rolling
        wanted["roll"] = "2"
        deployments.remark("done")
        patch = {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "c", "env": [{"name": "ROLL", "value": "2"}]}]}
                }
            }
        }
        meter = Meter(server.pid)
        rolled = time.perf_counter()
        await asyncio.gather(
            *(
                _request(
                    session,
                    "PATCH",
                    f"{DEPLOYMENTS}/{n}",
                    data=json.dumps(patch),
                    headers=STRATEGIC,
                )
                for n in names
            )
        )
        patched = time.perf_counter()
        (complete,) = await _wait(
            [deployments.when(lambda w: w.count("done") >= count)],
            f"{count} rollouts",
        )
        roll_cpu = meter.read()
        per_deployment = sorted(t - rolled for t in deployments.marked["done"].values())
    finally:
        await deployments.stop()
    kubectl_started = time.perf_counter()
    verdict = await asyncio.to_thread(
        subprocess.run,
        kubectl_cmd(
            server, cache, "rollout", "status", "deployment", "-n", NAMESPACE,
            "-l", "bench=roll", "--timeout=60s",
        ),
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    kubectl_s = time.perf_counter() - kubectl_started
    rolled_out = verdict.stdout.count("successfully rolled out")
    if verdict.returncode != 0 or rolled_out != count:
        raise RuntimeError(f"kubectl rollout status: {verdict.stdout[-1000:]}{verdict.stderr}")
    check = await _check_pods(session, "bench=roll")
    replica_sets = await _request(
        session, "GET", REPLICASETS, params={"labelSelector": "bench=roll"}
    )
    old_left = (
        sum(
            1
            for rs in replica_sets["items"]
            if int(rs["spec"].get("replicas", 0))
            or int((rs.get("status") or {}).get("replicas", 0))
        )
        - count
    )
    return {
        "deployments": count,
        "per": per,
        "create_all_available_s": available - started,
        "create_posts_s": posted - started,
        "create_cpu": create_cpu,
        "rollout_all_complete_s": complete - rolled,
        "rollout_patches_s": patched - rolled,
        "rollout_first_complete_s": per_deployment[0],
        "rollout_median_complete_s": statistics.median(per_deployment),
        "rollout_cpu": roll_cpu,
        "deployment_events": deployments.events,
        "kubectl_rollout_status_s": kubectl_s,
        "kubectl_rolled_out": rolled_out,
        "check": {**check, "old_replica_sets_not_at_zero": old_left},
    }


async def idle(server: Server, session: aiohttp.ClientSession, seconds: float) -> JSONDict:
    """CPU of `recon serve` and writes to its store while nothing changes."""
    before_rev = await _store_revision(session)
    before_cpu = cpu_seconds(server.pid)
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - started
    used = cpu_seconds(server.pid) - before_cpu
    writes = await _store_revision(session) - before_rev
    return {
        "seconds": wall,
        "cpu_s": used,
        "percent": 100 * used / wall,
        "writes": writes,
    }


# -- one runtime -----------------------------------------------------------------------------


async def _clear(session: aiohttp.ClientSession, wait: float) -> None:
    """Delete every Deployment, ReplicaSet and Pod of the namespace; wait for the pods."""
    pods = Watched(session, PODS, "", {})
    await pods.start()
    try:
        gone = pods.when(lambda w: not w.objects)
        for path in (DEPLOYMENTS, REPLICASETS, PODS):
            await _request(session, "DELETE", path)
        await asyncio.wait_for(gone, wait)
    finally:
        await pods.stop()


def _remove_leftovers(data_dir: Path) -> None:
    """What a docker run may leave: containers with its agent label, the namespace's network,
    the shared services network (refused by the engine while another server uses it)."""
    label = f"recon.dev/agent={agent_id_for(data_dir.resolve())}"
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if found:
        subprocess.run(["docker", "rm", "-f", *found], capture_output=True, check=False)
    for network in (f"recon-{NAMESPACE}", "recon-services"):
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
    shutil.rmtree(Path("/dev/shm/recon") / agent_id_for(data_dir.resolve()), True)


async def run_runtime(runtime: str, sizes: Sizes, workdir: Path) -> JSONDict:
    data_dir = workdir / runtime / "data"
    args = ("--no-gitops", "--pause-image", PAUSE)
    server: Server
    if runtime == "memory":
        total = sizes.replicas + 2 * sizes.deployments * sizes.per + 10
        args += ("--max-pods", str(total))  # one node takes them all, as a kwok node would
        server = Server(data_dir, free_port(), runtime=runtime, extra_args=args)
    else:
        server = Server(data_dir, free_port(), runtime=runtime, extra_args=args)
    out: JSONDict = {"runtime": runtime, "sizes": sizes.__dict__}
    server.start()
    try:
        async with server.session() as session:
            await _request(
                session,
                "POST",
                "/api/v1/namespaces",
                json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            )
            out["scale"] = await scale(server, session, sizes.replicas)
            print(f"{runtime}: scale {out['scale']['all_ready_s']:.1f} s", flush=True)
            out["rollout"] = await rollout(
                server, session, sizes.deployments, sizes.per, workdir / "kube-cache"
            )
            print(
                f"{runtime}: rollout {out['rollout']['rollout_all_complete_s']:.1f} s", flush=True
            )
            await asyncio.sleep(2.0)  # the last rollout's deletions and status writes
            out["idle"] = await idle(server, session, sizes.idle)
            out["idle"]["pods"] = sizes.replicas + sizes.deployments * sizes.per
            if runtime == "docker":
                await _clear(session, 120.0)
    finally:
        server.stop()
        if runtime == "docker":
            await asyncio.to_thread(_remove_leftovers, data_dir)
        problems = server.log_problems()
        if problems:
            out["server_log_problems"] = problems
    return out


async def run(runtimes: list[str], sizes: dict[str, Sizes], workdir: Path) -> JSONDict:
    results: JSONDict = {"machine": machine()}
    for runtime in runtimes:
        results[runtime] = await run_runtime(runtime, sizes[runtime], workdir)
    return results


# -- report ----------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render(r: JSONDict) -> str:
    m = r.get("machine", {})
    head = (
        f"{m.get('date', '?')}: {m.get('nproc', '?')} CPUs, Python {m.get('python', '?')}, "
        f"load average {' '.join(m.get('loadavg_start', []))} → "
        f"{' '.join(m.get('loadavg_end', []))}"
    )
    mem, dock = r.get("memory"), r.get("docker")

    def cell(section: JSONDict | None, text: Callable[[JSONDict], str]) -> str:
        return text(section) if section else "—"

    rows = []
    if mem or dock:
        rows.append(
            [
                "one Deployment: create → all pods Ready and readyReplicas == R",
                cell(mem, _scale),
                cell(dock, _scale),
                "< 15 s for R=1,000",
                _met(mem["scale"]["all_ready_s"] < 15) if mem else "—",
            ]
        )
        rows.append(
            [
                "D Deployments x P created at once → all available",
                cell(mem, lambda s: _roll(s, "create_all_available_s")),
                cell(dock, lambda s: _roll(s, "create_all_available_s")),
                "—",
                "—",
            ]
        )
        rows.append(
            [
                "D Deployments rolled at once → every rollout complete",
                cell(mem, lambda s: _roll(s, "rollout_all_complete_s")),
                cell(dock, lambda s: _roll(s, "rollout_all_complete_s")),
                "—",
                "—",
            ]
        )
        rows.append(
            [
                "CPU of `recon serve` when nothing changes",
                cell(mem, _idle),
                cell(dock, _idle),
                "≈ 0 (no polling)",
                _met(mem["idle"]["percent"] < 1) if mem else "—",
            ]
        )
    table = markdown_table(["scenario", "memory runtime", "Docker", "target", "met"], rows)
    details = markdown_table(
        ["runtime", "measure", "value"], [row for s in (mem, dock) if s for row in _details(s)]
    )
    problems = [
        f"- {s['runtime']}: {line}"
        for s in (mem, dock)
        if s
        for line in s.get("server_log_problems", [])
    ]
    logs = (
        "server logs: no errors" if not problems else "server log errors:\n" + "\n".join(problems)
    )
    return f"{head}\n\n{table}\n\n{details}\n\n{logs}"


def _scale(s: JSONDict) -> str:
    return f"R={s['scale']['replicas']}: {s['scale']['all_ready_s']:.1f} s"


def _roll(s: JSONDict, key: str) -> str:
    ro = s["rollout"]
    return f"{ro['deployments']}x{ro['per']}: {ro[key]:.1f} s"


def _idle(s: JSONDict) -> str:
    i = s["idle"]
    return f"{i['percent']:.2f} % of a core, {i['writes']} writes in {i['seconds']:.0f} s"


def _details(s: JSONDict) -> list[list[str]]:
    rt, sc, ro = s["runtime"], s["scale"], s["rollout"]
    n = sc["replicas"]
    return [
        [rt, f"scale {n}: all pods created", f"{sc['all_pods_created_s']:.2f} s"],
        [rt, f"scale {n}: all pods bound", f"{sc['all_pods_bound_s']:.2f} s"],
        [
            rt,
            f"scale {n}: pods Ready, first / median / last",
            f"{sc['first_pod_ready_s']:.2f} / {sc['median_pod_ready_s']:.2f} / "
            f"{sc['all_pods_ready_s']:.2f} s",
        ],
        [rt, f"scale {n}: Deployment readyReplicas == {n}", f"{sc['deployment_ready_s']:.2f} s"],
        [
            rt,
            f"scale {n}: CPU (server / this client)",
            f"{sc['server_cpu_s']:.1f} s / {sc['client_cpu_s']:.1f} s in {sc['wall_s']:.1f} s",
        ],
        [rt, f"scale {n}: pod watch events", f"{sc['pod_events']}"],
        [
            rt,
            f"rollout {ro['deployments']}x{ro['per']}: create, POSTs sent",
            f"{ro['create_posts_s']:.2f} s",
        ],
        [
            rt,
            f"rollout {ro['deployments']}x{ro['per']}: create, server CPU",
            f"{ro['create_cpu']['server_cpu_s']:.1f} s in {ro['create_cpu']['wall_s']:.1f} s",
        ],
        [
            rt,
            f"rollout {ro['deployments']}x{ro['per']}: PATCHes sent",
            f"{ro['rollout_patches_s']:.2f} s",
        ],
        [
            rt,
            f"rollout {ro['deployments']}x{ro['per']}: complete, first / median / last",
            f"{ro['rollout_first_complete_s']:.2f} / {ro['rollout_median_complete_s']:.2f} / "
            f"{ro['rollout_all_complete_s']:.2f} s",
        ],
        [
            rt,
            f"rollout {ro['deployments']}x{ro['per']}: server CPU",
            f"{ro['rollout_cpu']['server_cpu_s']:.1f} s in {ro['rollout_cpu']['wall_s']:.1f} s",
        ],
        [
            rt,
            "`kubectl rollout status -l` afterwards",
            f"{ro['kubectl_rolled_out']} rolled out, {ro['kubectl_rollout_status_s']:.1f} s",
        ],
        [
            rt,
            f"idle {s['idle']['pods']} pods, {s['idle']['seconds']:.0f} s",
            f"{s['idle']['cpu_s']:.2f} CPU-s, {s['idle']['writes']} store writes",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--per", type=int, default=3)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--docker-replicas", type=int, default=20)
    parser.add_argument("--docker-deployments", type=int, default=10)
    parser.add_argument("--docker-per", type=int, default=2)
    parser.add_argument("--only", default="memory,docker", help="runtimes, comma-separated")
    parser.add_argument("--render", type=Path, help="re-print a saved result and exit")
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return
    sizes = {
        "memory": Sizes(args.replicas, args.deployments, args.per, args.idle),
        "docker": Sizes(args.docker_replicas, args.docker_deployments, args.docker_per, args.idle),
    }
    runtimes = [r for r in args.only.split(",") if r]
    with tempfile.TemporaryDirectory(prefix="recon-bench-controllers-") as tmp:
        results = asyncio.run(run(runtimes, sizes, Path(tmp)))
    results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    path = write_results("controllers", results)
    print(render(results))
    print(f"raw: {path}")


if __name__ == "__main__":
    main()
