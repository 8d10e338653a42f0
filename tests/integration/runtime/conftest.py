"""Fixtures for the Docker runtime's tests: a live engine (or a skip), the locally built
images, a throw-away memory-dir root, and a real registry on 127.0.0.1:5000.

The registry is Debian's `docker-registry`, installed with apt-get when absent (as root),
started as a child process with a config file in a temporary directory, and stopped by its
PID. When something already answers on 127.0.0.1:5000/v2/ (another test run's registry),
it is used and left alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.runtime.docker import DockerRuntime

BUSYBOX = "recon.local/busybox:latest"
PAUSE = "recon.local/pause:latest"
REGISTRY = "127.0.0.1:5000"


def _engine_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped, unused-ignore]

        client: Any = docker.APIClient(version="auto", timeout=5)
        client.ping()
        client.inspect_image(BUSYBOX)
        client.inspect_image(PAUSE)
        client.close()
    except Exception:
        return False
    return True


DOCKER_ANSWERS = _engine_answers()
requires_docker = pytest.mark.skipif(
    not DOCKER_ANSWERS,
    reason="no Docker engine with recon.local/busybox and recon.local/pause "
    "(run scripts/setup-docker.sh as root)",
)


def _registry_answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _install_registry() -> str | None:
    found = shutil.which("docker-registry")
    if found or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "docker-registry"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(install, env=env, capture_output=True, check=False)
    return shutil.which("docker-registry")


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """`127.0.0.1:5000` with a registry answering, or None when none can be had."""
    if not DOCKER_ANSWERS:
        yield None
        return
    if _registry_answers():
        yield REGISTRY
        return
    binary = _install_registry()
    if binary is None:
        yield None
        return
    root = tmp_path_factory.mktemp("registry")
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {REGISTRY}\n"
    )
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not _registry_answers():
            if process.poll() is not None or time.monotonic() > deadline:
                yield None
                return
            time.sleep(0.1)
        yield REGISTRY
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def local_only_image(local_registry: str | None) -> Iterator[str]:
    """busybox tagged under the local registry's name but never pushed: present here,
    absent there (so IfNotPresent must not pull it, and Always fails to)."""
    ref = f"{REGISTRY}/recon-test/local-only:{uuid.uuid4().hex[:10]}"
    subprocess.run(["docker", "tag", BUSYBOX, ref], check=True, capture_output=True)
    try:
        yield ref
    finally:
        subprocess.run(["docker", "rmi", ref], check=False, capture_output=True)


@pytest.fixture
def memory_dir_root() -> Iterator[Path]:
    root = Path("/dev/shm") / f"recon-test-{uuid.uuid4().hex[:10]}"
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def docker_runtime(memory_dir_root: Path) -> AsyncIterator[DockerRuntime]:
    runtime = await DockerRuntime.connect(memory_dir_root=memory_dir_root)
    try:
        yield runtime
    finally:
        await runtime.close()


async def http_get_from_host(port: int) -> bytes:
    """A real TCP connection to 127.0.0.1:`port` and a plain HTTP/1.0 GET; b"" on failure."""
    try:
        async with asyncio.timeout(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            response = await reader.read()
            writer.close()
            await writer.wait_closed()
    except (OSError, TimeoutError):
        return b""
    return response if b" 200 " in response.split(b"\r\n", 1)[0] else b""
