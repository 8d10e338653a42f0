"""The other `recon serve` processes on this host, whose cluster names the DNS also knows.

Every pod sandbox on this engine asks 10.111.0.1:53 (the services bridge), and only one
process can listen there; two servers sharing one dockerd (a test run next to a demo) would
otherwise answer NXDOMAIN for each other's Services. So each server also answers, on an
ephemeral UDP port of 127.0.0.1, from its own Services only, and publishes that port in a
shared directory (one file per agent id: `<port> <pid>`). The server holding port 53 asks
its peers before it answers NXDOMAIN for a cluster name; the first to know the name wins.
A file whose process is gone is removed by whoever finds it.

The directory is per user (`recon-dns-peers-<uid>`, mode 0700) and only files owned by
this user are believed: a peer's answers reach pods (for a name this server does not know,
search-list tries like `pypi.org.<ns>.svc.cluster.local` included), so nobody else may
publish one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from pathlib import Path

from reconciler.node.dns_forward import exchange

__all__ = ["DEFAULT_PEERS_DIR", "DnsPeers"]

log = logging.getLogger(__name__)

DEFAULT_PEERS_DIR = Path(tempfile.gettempdir()) / f"recon-dns-peers-{os.getuid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DnsPeers:
    def __init__(self, directory: Path, agent_id: str) -> None:
        self.directory = directory
        self.agent_id = agent_id

    def _trusted(self, path: Path) -> bool:
        """Ours alone: owned by this user, and (the directory) writable by nobody else."""
        try:
            info = path.stat(follow_symlinks=False)
        except OSError:
            return False
        return info.st_uid == os.getuid() and not info.st_mode & 0o022

    def publish(self, port: int) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self._trusted(self.directory):
            log.warning(
                "cluster DNS: %s is not this user's alone; not cooperating with other servers",
                self.directory,
            )
            return
        path = self.directory / self.agent_id
        temporary = path.with_name(f".{self.agent_id}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"{port} {os.getpid()}\n")
        temporary.replace(path)

    def withdraw(self) -> None:
        with contextlib.suppress(OSError):
            text = (self.directory / self.agent_id).read_text().split()
            if text[1:2] == [str(os.getpid())]:
                (self.directory / self.agent_id).unlink()

    def ports(self) -> list[int]:
        """The live peers' ports (not ours)."""
        found: list[int] = []
        if not self._trusted(self.directory):
            return []
        try:
            entries = sorted(self.directory.iterdir())
        except OSError:
            return []
        for entry in entries:
            if entry.name.startswith(".") or entry.name == self.agent_id:
                continue
            if not self._trusted(entry):
                continue
            try:
                port, pid = (int(x) for x in entry.read_text().split()[:2])
            except (OSError, ValueError):
                continue
            if _alive(pid):
                found.append(port)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
        return found

    async def ask(self, message: bytes, timeout: float = 0.5) -> bytes | None:
        """The first peer answer to `message` that is not an error (NOERROR: the peer knows
        the name), or None when no peer does."""
        ports = await asyncio.to_thread(self.ports)
        if not ports:
            return None
        pending = {
            asyncio.ensure_future(exchange(("127.0.0.1", port), message, timeout=timeout))
            for port in ports
        }
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    answer = task.result()
                    if answer is not None and len(answer) > 3 and answer[3] & 0xF == 0:
                        return answer
            return None
        finally:
            for task in pending:
                task.cancel()
