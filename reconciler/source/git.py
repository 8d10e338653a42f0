"""Git sources: resolve a revision of a remote repository and check its tree out, cached.

Every sync starts here. Repositories are mirrored once into a bare cache
(`CACHE/repos/<hash>.git`) and fetched incrementally afterwards; the tree of each commit is
exported once into `CACHE/trees/<sha>/`, which is immutable and therefore shared by every
reader. Fetches are shallow where the remote allows it.

Credentials may be part of a URL (`https://user:token@host/repo.git`); they are never put
in an error message or a log line (`redact`).

GitPython drives the `git` binary; every method here blocks, so async callers run them in a
thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import git

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


class GitSourceError(Exception):
    """A fetch or checkout failed; the message is safe to show (credentials redacted)."""


@dataclass(frozen=True)
class Checkout:
    """The files of one commit: `path` must be treated as read-only."""

    url: str
    requested: str
    revision: str  # the full commit SHA
    path: Path


def redact(text: str) -> str:
    """Remove `user:password@` from every URL in `text`."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def _git_env() -> dict[str, str]:
    # Never prompt for credentials: a missing credential is an error, not a hang.
    return {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "LC_ALL": "C"}


class GitCache:
    """Bare mirrors of remote repositories and the exported trees of their commits."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        (cache_dir / "repos").mkdir(parents=True, exist_ok=True)
        (cache_dir / "trees").mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, url: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(url, threading.Lock())

    def _mirror(self, url: str) -> git.Repo:
        digest = hashlib.sha256(url.encode()).hexdigest()[:24]
        path = self.cache_dir / "repos" / f"{digest}.git"
        if path.exists():
            return git.Repo(path)
        repo = git.Repo.init(path, bare=True)
        repo.git.remote("add", "origin", url)
        return repo

    def remote_revision(self, url: str, revision: str = "HEAD") -> str | None:
        """The SHA `revision` names on the remote, without fetching (None if it is a SHA
        or unknown): the cheap check that lets a poll skip fetching when nothing moved."""
        if _SHA.match(revision):
            return None
        try:
            out = str(git.cmd.Git().ls_remote(url, revision, env=_git_env()))
        except git.GitCommandError as e:
            raise GitSourceError(
                f"cannot reach {redact(url)}: {redact(str(e.stderr).strip())}"
            ) from None
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref in (
                revision,
                f"refs/heads/{revision}",
                f"refs/tags/{revision}",
                f"refs/tags/{revision}^{{}}",
            ):
                return sha
        return None

    def checkout(self, url: str, revision: str = "HEAD") -> Checkout:
        """Fetch `revision` (branch, tag, HEAD or commit SHA) and return its files."""
        with self._lock(url):
            repo = self._mirror(url)
            sha = self._fetch(repo, url, revision)
            return Checkout(url, revision, sha, self._export(repo, sha))

    def _fetch(self, repo: git.Repo, url: str, revision: str) -> str:
        env = _git_env()
        try:
            if _SHA.match(revision):
                known = self._resolve_local(repo, revision)
                if known:
                    return known
                repo.git.fetch("origin", "--tags", "+refs/heads/*:refs/heads/*", env=env)
                resolved = self._resolve_local(repo, revision)
                if resolved is None:
                    raise GitSourceError(f"revision {revision} not found in {redact(url)}")
                return resolved
            ref = revision
            repo.git.fetch(
                "origin", "--depth", "1", "--force", f"{ref}:refs/recon/fetched", env=env
            )
            return repo.git.rev_parse("refs/recon/fetched^{commit}").strip()  # type: ignore[no-any-return]
        except git.GitCommandError as e:
            detail = redact(str(e.stderr or e).strip())
            if "couldn't find remote ref" in detail or "not found" in detail.lower():
                raise GitSourceError(f"revision {revision!r} not found in {redact(url)}") from None
            raise GitSourceError(f"fetching {redact(url)} failed: {detail}") from None

    @staticmethod
    def _resolve_local(repo: git.Repo, revision: str) -> str | None:
        try:
            return repo.git.rev_parse("--verify", "--quiet", f"{revision}^{{commit}}").strip()  # type: ignore[no-any-return]
        except git.GitCommandError:
            return None

    def _export(self, repo: git.Repo, sha: str) -> Path:
        target = self.cache_dir / "trees" / sha
        if target.exists():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=self.cache_dir / "trees"))
        try:
            with tempfile.TemporaryFile() as archive:
                repo.archive(archive, treeish=sha, format="tar")
                archive.seek(0)
                with tarfile.open(fileobj=archive) as tar:
                    tar.extractall(staging, filter="data")  # no paths outside staging
            os.rename(staging, target)  # atomic: readers never see a half-written tree
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.exists():
                raise
        except git.GitCommandError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise GitSourceError(f"checking out {sha} failed: {redact(str(e.stderr))}") from None
        return target
