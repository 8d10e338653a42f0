"""Resource metrics: what `kubectl top` and the HorizontalPodAutoscaler read, as
metrics-server serves them from the kubelets.

Every `resolution` seconds (15, metrics-server's default `--metric-resolution`) the
collector reads each running app container's cumulative CPU time and memory working set
(`ContainerRuntime.usage`: the cgroup, as cAdvisor) and the host's (`/proc/stat`,
`/proc/meminfo`). CPU is a rate, so a container is reported from its second sample on: the
CPU time used between the two samples over the time between them (the `window`); memory is
the latest working set. A restarted container starts over (a new engine container).

The results are metrics.k8s.io/v1beta1 objects: `PodMetrics` (labels copied from the pod,
so label selectors work, as metrics-server does) and `NodeMetrics`, with CPU in nanocores
(`"1234567n"`) and memory in KiB (`"2048Ki"`). They live in memory only; the API server
answers from them (`apiserver/metrics_api.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from reconciler.clock import Clock
from reconciler.node.eviction_signals import parse_meminfo_available
from reconciler.runtime.base import ResourceUsage
from reconciler.runtime.errors import ContainerRuntimeError

__all__ = [
    "DEFAULT_RESOLUTION_S",
    "HostSample",
    "MetricsCollector",
    "RunningContainer",
    "host_sample",
    "parse_meminfo",
    "parse_proc_stat",
    "running_containers",
]

JSONDict = dict[str, Any]
Lookup = Callable[[str, str], JSONDict | None]

log = logging.getLogger(__name__)

DEFAULT_RESOLUTION_S = 15.0
METRICS_API = "metrics.k8s.io/v1beta1"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Measured(Protocol):
    """What the collector needs of a container runtime."""

    async def usage(self, container_id: str) -> ResourceUsage | None: ...


@dataclass(frozen=True)
class RunningContainer:
    id: str
    namespace: str
    pod: str
    pod_uid: str
    name: str


def running_containers(pods: Iterable[JSONDict], node_name: str) -> list[RunningContainer]:
    """The running containers of the pods bound to `node_name`, from the pods' own statuses
    (the node agent writes `containerID` there): asking the engine to list and inspect
    every container each round would cost more than the measuring. Running sidecars (init
    containers that keep running) and debug containers use the node too, and count, as
    the kubelet's resource metrics have them. Pure."""
    found: list[RunningContainer] = []
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") != node_name:
            continue
        meta = pod.get("metadata") or {}
        status_of = pod.get("status") or {}
        statuses = [
            s
            for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses")
            for s in status_of.get(key) or []
        ]
        for status in statuses:
            container_id = str(status.get("containerID") or "")
            if "running" not in (status.get("state") or {}) or "://" not in container_id:
                continue
            found.append(
                RunningContainer(
                    container_id.split("://", 1)[1],
                    str(meta.get("namespace") or ""),
                    str(meta.get("name") or ""),
                    str(meta.get("uid") or ""),
                    str(status.get("name") or ""),
                )
            )
    return found


@dataclass(frozen=True)
class HostSample:
    cpu_ns: int
    """Busy CPU time of the whole host since boot (all cores)."""
    memory_bytes: int
    """Memory in use: MemTotal - MemAvailable."""


def parse_proc_stat(text: str, ticks_per_s: int = _CLOCK_TICKS) -> int:
    """Busy CPU nanoseconds (every state but idle and iowait) from `/proc/stat`."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:9]]  # user..steal (guest is inside user)
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            return (sum(values) - idle) * 1_000_000_000 // ticks_per_s
    raise ValueError("no cpu line in /proc/stat")


def parse_meminfo(text: str) -> int:
    """Bytes in use (MemTotal - MemAvailable) from `/proc/meminfo`."""
    memory = parse_meminfo_available(text)
    return max(memory.capacity - memory.available, 0)


def host_sample(proc: Path = Path("/proc")) -> HostSample | None:
    try:
        return HostSample(
            parse_proc_stat((proc / "stat").read_text()),
            parse_meminfo((proc / "meminfo").read_text()),
        )
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class _Sample:
    cpu_ns: int
    at: float


@dataclass(frozen=True)
class _ContainerRate:
    pod_uid: str
    namespace: str
    pod: str
    container: str
    nanocores: int
    memory_bytes: int
    window_s: float


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _usage(nanocores: int, memory_bytes: int) -> JSONDict:
    return {"cpu": f"{max(nanocores, 0)}n", "memory": f"{memory_bytes // 1024}Ki"}


class MetricsCollector:
    """`MetricsCollector(runtime, clock, node_name, pods, pod_list)`; `start()`, then
    `stop()`; `pod_metrics()` and `node_metrics()` answer from the latest round. `pods`
    finds a pod by (namespace, name), `pod_list` lists them (the node agent's cache)."""

    def __init__(
        self,
        runtime: Measured,
        clock: Clock,
        node_name: str,
        pods: Lookup,
        pod_list: Callable[[], Iterable[JSONDict]],
        resolution: float = DEFAULT_RESOLUTION_S,
        host: Callable[[], HostSample | None] = host_sample,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.node_name = node_name
        self.pods = pods
        self.pod_list = pod_list
        self.resolution = resolution
        self.host = host
        self._samples: dict[str, _Sample] = {}  # container id -> its previous sample
        self._rates: list[_ContainerRate] = []
        self._host_previous: tuple[HostSample, float] | None = None
        self._node: tuple[int, int, float] | None = None  # nanocores, bytes, window
        self._scraped_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.scrape()
            except asyncio.CancelledError:
                raise
            except ContainerRuntimeError as exc:
                log.info("metrics: the engine did not answer: %s", exc)
            except Exception:
                log.exception("metrics: a scrape failed")
            await self.clock.sleep(self.resolution)

    async def scrape(self) -> None:
        """One round: sample every running container of this node's pods, and the host."""
        now = self.clock.monotonic()
        rates: list[_ContainerRate] = []
        seen: set[str] = set()
        for record in running_containers(self.pod_list(), self.node_name):
            usage = await self.runtime.usage(record.id)
            if usage is None:
                continue
            seen.add(record.id)
            previous = self._samples.get(record.id)
            self._samples[record.id] = _Sample(usage.cpu_ns, now)
            if previous is None or now <= previous.at:
                continue  # a rate needs two samples
            window = now - previous.at
            rates.append(
                _ContainerRate(
                    pod_uid=record.pod_uid,
                    namespace=record.namespace,
                    pod=record.pod,
                    container=record.name,
                    nanocores=int((usage.cpu_ns - previous.cpu_ns) / window),
                    memory_bytes=usage.memory_bytes,
                    window_s=window,
                )
            )
        for gone in set(self._samples) - seen:
            del self._samples[gone]
        self._rates = rates
        self._scrape_host(now)
        self._scraped_at = self.clock.now()

    def _scrape_host(self, now: float) -> None:
        sample = self.host()
        if sample is None:
            return
        previous, self._host_previous = self._host_previous, (sample, now)
        if previous is not None and now > previous[1]:
            window = now - previous[1]
            nanocores = int((sample.cpu_ns - previous[0].cpu_ns) / window)
            self._node = (nanocores, sample.memory_bytes, window)

    def pod_metrics(self) -> list[JSONDict]:
        """PodMetrics of every pod with at least one measured container, by namespace/name."""
        if self._scraped_at is None:
            return []
        stamp = _timestamp(self._scraped_at)
        by_pod: dict[str, list[_ContainerRate]] = {}
        for rate in self._rates:
            by_pod.setdefault(rate.pod_uid, []).append(rate)
        found: list[JSONDict] = []
        for rates in by_pod.values():
            first = rates[0]
            pod = self.pods(first.namespace, first.pod)
            if pod is None or (pod.get("metadata") or {}).get("uid") != first.pod_uid:
                continue  # gone, or a new pod of the same name not measured yet
            labels = dict((pod.get("metadata") or {}).get("labels") or {})
            found.append(
                {
                    "kind": "PodMetrics",
                    "apiVersion": METRICS_API,
                    "metadata": {
                        "name": first.pod,
                        "namespace": first.namespace,
                        "labels": labels,
                        "creationTimestamp": stamp,
                    },
                    "timestamp": stamp,
                    "window": _window(max(r.window_s for r in rates)),
                    "containers": [
                        {"name": r.container, "usage": _usage(r.nanocores, r.memory_bytes)}
                        for r in sorted(rates, key=lambda r: r.container)
                    ],
                }
            )
        return sorted(found, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))

    def node_metrics(self) -> list[JSONDict]:
        if self._node is None or self._scraped_at is None:
            return []
        nanocores, memory, window = self._node
        stamp = _timestamp(self._scraped_at)
        return [
            {
                "kind": "NodeMetrics",
                "apiVersion": METRICS_API,
                "metadata": {
                    "name": self.node_name,
                    "labels": {
                        "kubernetes.io/hostname": self.node_name,
                        "kubernetes.io/os": "linux",
                    },
                    "creationTimestamp": stamp,
                },
                "timestamp": stamp,
                "window": _window(window),
                "usage": _usage(nanocores, memory),
            }
        ]
