"""Writing a file volume so a reader never sees half an update (the kubelet's AtomicWriter).

Layout, as on Kubernetes (users `ls -la` a mounted ConfigMap and expect it):

    ..2026_11_22_10_00_00.123456/   the files of one version
    ..data -> ..2026_...            swapped with one rename(2)
    key -> ..data/key               one link per top-level entry

A process that opens `key` gets the old or the new file, never a mix. A file mounted with
`subPath` is bound to the versioned file itself, so (as on Kubernetes) it does not update.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from reconciler.node.volume_files import FileContent

__all__ = ["current_files", "write_files"]

_DATA = "..data"


def current_files(directory: Path) -> dict[str, bytes]:
    """What the volume shows now (for change detection and tests)."""
    data = directory / _DATA
    if not data.exists():
        return {}
    root = data.resolve()
    out: dict[str, bytes] = {}
    for path in root.rglob("*"):
        if path.is_file():
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def _same(directory: Path, files: Mapping[str, FileContent]) -> bool:
    data = directory / _DATA
    if not data.exists():
        return False
    root = data.resolve()
    present = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    if present != set(files):
        return False
    for rel, content in files.items():
        path = root / rel
        if path.read_bytes() != content.data or (path.stat().st_mode & 0o777) != content.mode:
            return False
    return True


def write_files(directory: Path, files: Mapping[str, FileContent]) -> bool:
    """Make `directory` show exactly `files`; returns whether anything changed."""
    if _same(directory, files):
        return False
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    version = directory / stamp
    version.mkdir(mode=0o755)
    for rel, content in files.items():
        path = version / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.data)
        path.chmod(content.mode)
    old = (directory / _DATA).resolve() if (directory / _DATA).is_symlink() else None
    tmp_link = directory / "..data_tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(stamp)
    os.replace(tmp_link, directory / _DATA)
    tops = {rel.split("/", 1)[0] for rel in files}
    for top in tops:
        link = directory / top
        if not link.is_symlink():
            link.symlink_to(f"{_DATA}/{top}")
    for entry in directory.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old is not None and old.name != stamp and old.parent == directory:
        shutil.rmtree(old, ignore_errors=True)
    return True
