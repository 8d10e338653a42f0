"""Memory dirs: secret data only ever goes to a tmpfs, and a root on disk is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.runtime.errors import InvalidSpecError, MemoryDirError
from reconciler.runtime.memdir import MemoryDirs, filesystem_type

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0
tmpfs /srv/with\\040space tmpfs rw 0 0
/dev/vdb /dev/shm/disk ext4 rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "ext4"),
        ("/etc/passwd", "ext4"),
        ("/dev/shm", "tmpfs"),
        ("/dev/shm/recon/uid/secret", "tmpfs"),
        ("/dev/shmother", "ext4"),  # a prefix of the name is not the mount point
        ("/dev/shm/disk/x", "ext4"),  # the longest mount point wins
        ("/srv/with space/x", "tmpfs"),  # octal escapes in /proc/mounts
    ],
)
def test_filesystem_type(tmp_path: Path, path: str, kind: str) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    assert filesystem_type(Path(path), mounts) == kind


def test_a_root_on_disk_is_refused(tmp_path: Path) -> None:
    if filesystem_type(tmp_path) in ("tmpfs", "ramfs"):
        pytest.skip("the temporary directory is itself on tmpfs here")
    with pytest.raises(MemoryDirError, match="not tmpfs"):
        MemoryDirs(tmp_path / "root").ensure("uid-1", "secret")


def test_directories_per_pod() -> None:
    shm = Path("/dev/shm")
    if filesystem_type(shm) != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    dirs = MemoryDirs(shm / f"recon-unit-{id(shm):x}")
    try:
        secret = dirs.ensure("uid-1", "secret")
        assert secret == dirs.root / "uid-1" / "secret"
        assert dirs.ensure("uid-1", "secret") == secret
        assert secret.stat().st_mode & 0o777 == 0o755
        assert (dirs.root / "uid-1").stat().st_mode & 0o777 == 0o700
        dirs.ensure("uid-2", "cache")
        assert dirs.pods() == {"uid-1", "uid-2"}
        dirs.remove("uid-1")
        dirs.remove("uid-1")
        assert dirs.pods() == {"uid-2"}
        for bad_uid, bad_name in (("../x", "secret"), ("uid", ".."), ("uid", "a/b"), ("", "s")):
            with pytest.raises(InvalidSpecError):
                dirs.ensure(bad_uid, bad_name)
    finally:
        dirs.remove_root()
