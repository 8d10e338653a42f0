"""What every benchmark shares: a `recon serve` child process, kubectl, /proc readings, output.

Benchmarks run on shared, noisy machines, so each one measures a peer (the real `kubectl`
against the same server) in the same run and reports the ratio. This module holds the
plumbing: starting and stopping the server under test on a free loopback port, running
kubectl with its own cache directory, reading RSS and CPU time from /proc, summarising
samples, printing tables and writing the JSON record to `bench/results/` (git-ignored).

Bytecode: `Server` runs Python with `PYTHONPYCACHEPREFIX` pointing at a cache directory the
benchmark owns (and `PYTHONDONTWRITEBYTECODE` unset), so the server imports compiled
modules as an installed copy would, without writing `__pycache__` into the source tree.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

__all__ = [
    "RESULTS",
    "Server",
    "cpu_seconds",
    "free_port",
    "kubectl_cmd",
    "kubectl_timed",
    "machine",
    "markdown_table",
    "rss_mb",
    "server_env",
    "summary",
    "warm_pycache",
    "write_results",
]

RESULTS = Path(__file__).parent / "results"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

# One bytecode cache per benchmark process (see the module docstring); removed at exit.
_PYCACHE = tempfile.TemporaryDirectory(prefix="recon-bench-pycache-")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int, *, tree: bool = False, key: str = "VmRSS") -> float:
    """VmRSS (or VmHWM, the peak) of a process, plus its descendants' if `tree`."""
    pids = [pid]
    if tree:
        for _ in range(3):  # kubectl may be a dispatcher; three levels is plenty
            pids += [c for p in list(pids) for c in _children(p) if c not in pids]
    return sum(_status_kb(p, key) for p in pids) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of a list of samples (kept alongside the samples themselves)."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def server_env(pycache: Path | None, data_dir: Path) -> dict[str, str]:
    """The server's environment: a warm bytecode cache at `pycache`, or none at all."""
    env = dict(os.environ)
    if pycache is None:  # compile every module from source, write nothing: a cold start
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(data_dir / "no-pycache")  # never created
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def warm_pycache() -> Path:
    return Path(_PYCACHE.name)


@dataclass
class Server:
    """One `recon serve` child process on 127.0.0.1:`port` with its data in `data_dir`."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    pycache: Path | None = field(default_factory=warm_pycache)
    runtime: str = "none"
    """API benchmarks measure the server alone; node benchmarks pass "docker" or "memory"."""
    extra_args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> str:
        return str(self.data_dir / "kubeconfig")

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not running"
        return self.proc.pid

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "reconciler.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--runtime",
            self.runtime,
            *self.extra_args,
        ]

    def start(self) -> float:
        """Spawn `recon serve`; return the seconds from spawn to the first 200 from /readyz."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "server.log").open("ab")
        env = server_env(self.pycache, self.data_dir)
        started = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log, env=env)
        log.close()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the CA is written during start-up; not needed here
        request = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        while time.perf_counter() - started < READY_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"recon serve exited early: {self.log_tail()}")
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as raw,
                    ctx.wrap_socket(raw) as tls,
                ):
                    tls.sendall(request)
                    if tls.recv(64).startswith(b"HTTP/1.1 200"):
                        return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"recon serve was not ready within {READY_TIMEOUT_S} s")

    def stop(self) -> float:
        """SIGTERM the server (by its PID) and wait; return the seconds it took to exit."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)
        return time.perf_counter() - started

    def log_tail(self, chars: int = 3000) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def log_problems(self, limit: int = 10) -> list[str]:
        """Lines of the server's log that report an error or a traceback."""
        path = self.data_dir / "server.log"
        if not path.exists():
            return []
        lines = path.read_text(errors="replace").splitlines()
        return [ln for ln in lines if " ERROR " in ln or ln.startswith("Traceback")][:limit]

    def session(self, limit: int = 64) -> aiohttp.ClientSession:
        """An aiohttp session that trusts the server's CA and sends its bearer token."""
        token = (self.data_dir / "token").read_text().strip()
        ctx = ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))
        return aiohttp.ClientSession(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            connector=aiohttp.TCPConnector(ssl=ctx, limit=limit),
            timeout=aiohttp.ClientTimeout(total=120),
        )


def kubectl_cmd(server: Server, cache_dir: Path, *args: str) -> list[str]:
    """kubectl against `server`, with a discovery cache of its own (not the user's ~/.kube)."""
    kubectl = shutil.which("kubectl") or "kubectl"
    return [kubectl, "--kubeconfig", server.kubeconfig, "--cache-dir", str(cache_dir), *args]


def kubectl_timed(server: Server, cache_dir: Path, *args: str, timeout: float = 300) -> float:
    """Run kubectl to completion (it must succeed); return its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        kubectl_cmd(server, cache_dir, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr[-2000:]}")
    return elapsed


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except OSError as e:
        return f"unavailable ({e})"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else ""


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the noise is part of the record)."""
    kubectl = shutil.which("kubectl")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "free_h": subprocess.run(
            ["free", "-h"], capture_output=True, text=True, timeout=10, check=False
        ).stdout,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "kubectl": _first_line([kubectl, "version", "--client"]) if kubectl else "missing",
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    return path
