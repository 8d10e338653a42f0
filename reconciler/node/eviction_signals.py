"""The eviction signals of this host, measured the way the kubelet's summary gives them.

- `memory.available`: `MemAvailable` of `MemTotal` (`/proc/meminfo`). The kubelet takes
  capacity minus the root cgroup's working set; both leave reclaimable page cache out, and
  MemAvailable is what the kernel itself expects can be had without swapping.
- `nodefs.*`: the filesystem of Recon's data directory (the kubelet's root dir: pod files,
  logs of the server), its free bytes and free inodes (`statvfs`).
- `imagefs.*`: the filesystem of the engine's own root (`DockerRootDir`, where images and
  container layers live), when the engine is on this host; not measured otherwise.
- `pid.available`: the smaller of `kernel.pid_max` and `kernel.threads-max`, less the
  tasks that exist (`/proc/loadavg`'s total), as the kubelet's rlimit stats.

Parsing is pure (`parse_*`); `measure` does the I/O and leaves out what it cannot read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from reconciler.node.eviction_thresholds import Observation

__all__ = ["Signals", "measure", "parse_loadavg_tasks", "parse_meminfo_available"]

Signals = Callable[[], dict[str, Observation]]
"""What the eviction manager calls each round (a fake in tests)."""


def parse_meminfo_available(text: str) -> Observation:
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[name] = int(parts[0]) * 1024
    total = values["MemTotal"]
    return Observation(values.get("MemAvailable", values.get("MemFree", 0)), total)


def parse_loadavg_tasks(text: str) -> int:
    """The number of tasks (processes and threads) from `/proc/loadavg`: `0.1 0.2 0.3 2/345 6`."""
    return int(text.split()[3].split("/")[1])


def _filesystem(path: Path, prefix: str) -> dict[str, Observation]:
    stats = os.statvfs(path)
    return {
        f"{prefix}.available": Observation(
            stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize
        ),
        f"{prefix}.inodesFree": Observation(stats.f_favail, stats.f_files),
    }


def measure(
    data_dir: Path | None, image_dir: Path | None, proc: Path = Path("/proc")
) -> dict[str, Observation]:
    found: dict[str, Observation] = {}
    with contextlib.suppress(OSError, ValueError, KeyError):
        found["memory.available"] = parse_meminfo_available((proc / "meminfo").read_text())
    for path, prefix in ((data_dir, "nodefs"), (image_dir, "imagefs")):
        if path is None:
            continue
        with contextlib.suppress(OSError):
            found.update(_filesystem(path, prefix))
    try:
        limit = min(
            int((proc / "sys/kernel/pid_max").read_text()),
            int((proc / "sys/kernel/threads-max").read_text()),
        )
        tasks = parse_loadavg_tasks((proc / "loadavg").read_text())
        found["pid.available"] = Observation(max(limit - tasks, 0), limit)
    except (OSError, ValueError, IndexError):
        pass
    return {name: obs for name, obs in found.items() if obs.capacity > 0}
