"""Git sources against real repositories made with the git binary in a temp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.source.git import GitCache, GitSourceError, redact


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare 'remote' with two commits on main and a tag on the first."""
    work = tmp_path / "work"
    work.mkdir()
    run(work, "init", "-q", "-b", "main")
    run(work, "config", "user.email", "t@example.com")
    run(work, "config", "user.name", "t")
    (work / "app.yaml").write_text("v: 1\n")
    run(work, "add", ".")
    run(work, "commit", "-qm", "one")
    run(work, "tag", "v1")
    (work / "app.yaml").write_text("v: 2\n")
    (work / "sub").mkdir()
    (work / "sub" / "more.yaml").write_text("x: y\n")
    run(work, "add", ".")
    run(work, "commit", "-qm", "two")
    bare = tmp_path / "remote.git"
    run(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def test_checkout_of_branch_tag_head_and_sha(remote: Path, tmp_path: Path) -> None:
    cache = GitCache(tmp_path / "cache")
    url = f"file://{remote}"
    head = cache.checkout(url, "HEAD")
    main = cache.checkout(url, "main")
    assert head.revision == main.revision == run(remote, "rev-parse", "main")
    assert (main.path / "app.yaml").read_text() == "v: 2\n"
    assert (main.path / "sub" / "more.yaml").exists()
    tagged = cache.checkout(url, "v1")
    assert (tagged.path / "app.yaml").read_text() == "v: 1\n"
    assert not (tagged.path / "sub").exists()
    first = run(remote, "rev-parse", "v1")
    by_sha = cache.checkout(url, first[:10])
    assert by_sha.revision == first and (by_sha.path / "app.yaml").read_text() == "v: 1\n"
    assert cache.checkout(url, "main").path == main.path  # trees are exported once


def test_remote_revision_is_a_cheap_check(remote: Path, tmp_path: Path) -> None:
    cache = GitCache(tmp_path / "cache")
    url = f"file://{remote}"
    assert cache.remote_revision(url, "main") == run(remote, "rev-parse", "main")
    assert cache.remote_revision(url, "v1") is not None
    assert cache.remote_revision(url, "nope") is None


def test_missing_revision_and_repository_are_clear_errors(remote: Path, tmp_path: Path) -> None:
    cache = GitCache(tmp_path / "cache")
    with pytest.raises(GitSourceError, match="'nope' not found"):
        cache.checkout(f"file://{remote}", "nope")
    with pytest.raises(GitSourceError, match="file:///does/not/exist"):
        cache.checkout("file:///does/not/exist", "main")


def test_credentials_are_redacted() -> None:
    text = "fatal: could not read https://alice:s3cret@git.example.com/repo.git"
    assert redact(text) == "fatal: could not read https://***@git.example.com/repo.git"
    assert "s3cret" not in redact("ssh://bob:pw@host/x and https://tok@h/y")
