"""Memory-backed host directories for secret volumes and `emptyDir: {medium: Memory}`.

Why here: secret data must never touch disk (ARCHITECTURE.md, decision 6). The design:

- the runtime owns one root directory that is on a tmpfs (default `/dev/shm/recon`; it is
  *checked* against `/proc/self/mounts`, and refused when it is not memory-backed, rather
  than silently writing secrets to disk);
- per pod and volume it hands out `<root>/<pod uid>/<volume>`; the node agent writes the
  files there (from its own memory: the bytes go from the API straight to tmpfs), and binds
  the directory into the pod's containers with a `BindMount`, read-only for secrets;
- every container of the pod sees the same directory, so one write reaches all of them, and
  an update (a changed Secret or ConfigMap) is visible at once, with no exec into the
  container and no shell needed in the image;
- the pod's directories are removed with the pod; after a restart the agent lists the pod
  uids that still have directories (`pods()`) and removes those of pods that are gone.

Alternatives rejected: writing through `docker exec` into a container tmpfs (needs a shell
in every image, and the container must already run before its secrets exist); `docker cp`
into a tmpfs mount (the archive API writes to the container's layer on disk); a Docker
volume with tmpfs options (only mounted while a container uses it, and the agent cannot
write into it before the first container starts).

Limits: tmpfs pages can be swapped out, as with Kubernetes' own secret volumes; the
directory is on the host where the engine runs, so this needs a local engine (which Recon,
single-host, has).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from reconciler.runtime.errors import InvalidSpecError, MemoryDirError

__all__ = ["DEFAULT_MEMORY_DIR_ROOT", "MemoryDirs", "filesystem_type"]

DEFAULT_MEMORY_DIR_ROOT = Path("/dev/shm/recon")
_MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _unescape_mount_path(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal (\040 ...).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def filesystem_type(path: Path, mounts_file: Path = Path("/proc/self/mounts")) -> str | None:
    """The type of the filesystem holding `path` (the longest mount point above it)."""
    resolved = str(path.resolve())
    best: tuple[int, str] | None = None
    try:
        text = mounts_file.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape_mount_path(fields[1])
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fields[2])
    return None if best is None else best[1]


class MemoryDirs:
    """Per-pod directories under a tmpfs root. Blocking (small filesystem calls): runtimes
    call it from a worker thread."""

    def __init__(self, root: Path = DEFAULT_MEMORY_DIR_ROOT, *, require_tmpfs: bool = True) -> None:
        self.root = root
        self._require_tmpfs = require_tmpfs
        self._checked = False

    def _check_root(self) -> None:
        if self._checked:
            return
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._require_tmpfs:
            kind = filesystem_type(self.root)
            if kind not in _MEMORY_FILESYSTEMS:
                raise MemoryDirError(
                    f"{self.root} is on {kind or 'an unknown filesystem'}, not tmpfs: secret "
                    "data would reach the disk. Mount a tmpfs there, or choose a root under "
                    "/dev/shm"
                )
        self._checked = True

    def _pod_dir(self, pod_uid: str) -> Path:
        if not _SEGMENT.match(pod_uid):
            raise InvalidSpecError(f"pod uid {pod_uid!r} cannot name a directory")
        return self.root / pod_uid

    def ensure(self, pod_uid: str, name: str) -> Path:
        """Create (if needed) and return the directory for the pod's volume `name`.

        The pod directory is 0700 (host users cannot list it); the volume directory is 0755
        so a non-root container user can read what the agent puts there with the modes it
        chooses. Inside a container only the volume directory itself is visible.
        """
        if not _SEGMENT.match(name) or name in (".", ".."):
            raise InvalidSpecError(f"memory dir name {name!r} is not a plain directory name")
        self._check_root()
        pod_dir = self._pod_dir(pod_uid)
        pod_dir.mkdir(mode=0o700, exist_ok=True)
        target = pod_dir / name
        target.mkdir(mode=0o755, exist_ok=True)
        os.chmod(target, 0o755)  # mkdir's mode is filtered by the umask
        return target

    def remove(self, pod_uid: str) -> None:
        shutil.rmtree(self._pod_dir(pod_uid), ignore_errors=True)

    def pods(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {entry.name for entry in self.root.iterdir() if entry.is_dir()}

    def remove_root(self) -> None:
        """Remove the root and everything under it (tests and fakes only)."""
        shutil.rmtree(self.root, ignore_errors=True)
