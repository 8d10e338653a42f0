"""A container's CPU and memory use, read from its cgroup as cAdvisor (inside the kubelet)
does.

Docker's stats endpoint waits a second per call to take two samples of its own; the
metrics pipeline samples on its own schedule and needs only the counters: cumulative CPU
time and the memory working set (usage minus inactive file cache, the number the kubelet
reports and evicts by). Both cgroup versions are read: v1 (`cpuacct.usage`,
`memory.usage_in_bytes`, `memory.stat` `total_inactive_file`) and v2 (`cpu.stat`
`usage_usec`, `memory.current`, `memory.stat` `inactive_file`). The cgroup of a process is
named in `/proc/PID/cgroup`; `recon serve` runs on the host, so `/sys/fs/cgroup` is the
host's. Parsing is pure; `read_usage` does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ResourceUsage", "cgroup_dirs", "read_usage"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ResourceUsage:
    cpu_ns: int
    """CPU time used since the container started, in nanoseconds."""
    memory_bytes: int
    """The working set: memory in use minus inactive file cache."""


def cgroup_dirs(proc_cgroup: str, root: Path = CGROUP_ROOT) -> dict[str, Path]:
    """`cpu` and `memory` -> the cgroup directory holding that controller's files, from the
    text of `/proc/PID/cgroup` (v1 lines `4:memory:/docker/ID`, v2 `0::/docker/ID`)."""
    found: dict[str, Path] = {}
    unified: str | None = None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        relative = path.lstrip("/")
        if not controllers:
            unified = relative
            continue
        names = controllers.split(",")
        if "cpuacct" in names and "cpu" not in found:
            for mount in (controllers, "cpuacct", "cpu,cpuacct"):
                if (root / mount).is_dir():
                    found["cpu"] = root / mount / relative
                    break
        if "memory" in names:
            found["memory"] = root / "memory" / relative
    if unified is not None:
        base = root if (root / "cgroup.controllers").exists() else root / "unified"
        found.setdefault("cpu", base / unified)
        found.setdefault("memory", base / unified)
    return found


def _stat_value(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def read_usage(pid: int, root: Path = CGROUP_ROOT) -> ResourceUsage | None:
    """The usage of the cgroup process `pid` is in; None when it is gone or unreadable."""
    try:
        dirs = cgroup_dirs(Path(f"/proc/{pid}/cgroup").read_text(), root)
        cpu_dir, memory_dir = dirs["cpu"], dirs["memory"]
        if (cpu_dir / "cpuacct.usage").exists():
            cpu_ns = int((cpu_dir / "cpuacct.usage").read_text())
        else:
            cpu_ns = _stat_value((cpu_dir / "cpu.stat").read_text(), "usage_usec") * 1000
        stat = (memory_dir / "memory.stat").read_text()
        if (memory_dir / "memory.usage_in_bytes").exists():
            used = int((memory_dir / "memory.usage_in_bytes").read_text())
            inactive = _stat_value(stat, "total_inactive_file")
        else:
            used = int((memory_dir / "memory.current").read_text())
            inactive = _stat_value(stat, "inactive_file")
    except (OSError, KeyError, ValueError):
        return None
    return ResourceUsage(cpu_ns, max(used - inactive, 0))
