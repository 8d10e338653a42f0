"""Small helpers the end-to-end tests share: waiting for a condition, driving git."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["BUSYBOX", "busybox_pod", "commit_all", "git", "wait_until"]


BUSYBOX = "recon.local/busybox:latest"


def busybox_pod(
    namespace: str,
    name: str,
    command: list[str],
    container: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Pod of one busybox container `c` running `command` (the image the set-up builds,
    never pulled), quick to stop; `container` adds to the container, `spec` to the pod."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": BUSYBOX,
                    "imagePullPolicy": "IfNotPresent",
                    "command": command,
                    **(container or {}),
                }
            ],
            **spec,
        },
    }


def wait_until(
    check: Callable[[], Any], timeout: float = 60, what: str = "", interval: float = 0.3
) -> Any:
    """The first truthy result of `check`, polled every `interval` s; fails after `timeout`
    saying what was awaited and what `check` last returned."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out: {what} (last: {last!r})")


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """git in `repo`, with an identity, its output captured."""
    return subprocess.run(
        ["git", "-c", "user.email=e2e@recon.dev", "-c", "user.name=e2e", *args],
        cwd=repo,
        check=check,
        capture_output=True,
        text=True,
        timeout=180,
    )


def commit_all(repo: Path, message: str) -> str:
    """Commit everything in `repo`; returns the new commit's SHA."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").stdout.strip()
