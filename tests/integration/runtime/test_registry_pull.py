"""Pulls from a real registry (Debian's `docker-registry` on 127.0.0.1:5000).

busybox is pushed there under a fresh tag, the local copy is removed, and the runtime pulls
it back: by tag with policy Always, by digest with IfNotPresent, and then runs it.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from reconciler.runtime.base import ContainerSpec, PullPolicy
from reconciler.runtime.docker import DockerRuntime
from reconciler.runtime.errors import ImageNotFoundError
from tests.integration.runtime.conftest import BUSYBOX, requires_docker

pytestmark = [pytest.mark.integration, requires_docker]


def _docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], check=check, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def pushed_image(local_registry: str | None) -> Iterator[str]:
    """`127.0.0.1:5000/recon-test/busybox:<fresh tag>`, in the registry and not here."""
    if local_registry is None:
        pytest.skip("no local registry (Debian's docker-registry) could be started")
    ref = f"{local_registry}/recon-test/busybox:{uuid.uuid4().hex[:10]}"
    _docker("tag", BUSYBOX, ref)
    try:
        _docker("push", ref)
    finally:
        _docker("rmi", ref)
    try:
        yield ref
    finally:
        _docker("rmi", "-f", ref, check=False)


async def test_always_pulls_from_the_local_registry(
    docker_runtime: DockerRuntime, pushed_image: str
) -> None:
    assert await docker_runtime.inspect_image(pushed_image) is None
    info = await docker_runtime.ensure_image(pushed_image, PullPolicy.ALWAYS)
    assert pushed_image in info.tags
    assert any(d.startswith(pushed_image.rpartition(":")[0] + "@sha256:") for d in info.digests)
    again = await docker_runtime.ensure_image(pushed_image, PullPolicy.ALWAYS)
    assert again.id == info.id

    name = f"rt-pull-{uuid.uuid4().hex[:8]}"
    container_id = await docker_runtime.create_container(
        ContainerSpec(
            name=name,
            image=pushed_image,
            command=("echo", "pulled and ran"),
            labels={"recon.dev/test-run": name},
        )
    )
    try:
        await docker_runtime.start_container(container_id)
        assert await docker_runtime.wait(container_id) == 0
        logs = b"".join([c async for c in docker_runtime.logs(container_id)])
        assert logs == b"pulled and ran\n"
    finally:
        await docker_runtime.remove_container(container_id)


async def test_pull_by_digest(docker_runtime: DockerRuntime, pushed_image: str) -> None:
    info = await docker_runtime.ensure_image(pushed_image, PullPolicy.IF_NOT_PRESENT)
    [digest_ref] = [d for d in info.digests if d.startswith(pushed_image.rpartition(":")[0])]
    await asyncio.to_thread(_docker, "rmi", pushed_image)
    try:
        assert await docker_runtime.inspect_image(digest_ref) is None
        by_digest = await docker_runtime.ensure_image(digest_ref, PullPolicy.IF_NOT_PRESENT)
        assert by_digest.id == info.id
    finally:
        await asyncio.to_thread(_docker, "rmi", "-f", digest_ref, check=False)


async def test_unknown_tag_in_the_registry(
    docker_runtime: DockerRuntime, pushed_image: str
) -> None:
    unknown = pushed_image.rpartition(":")[0] + ":no-such-tag"
    with pytest.raises(ImageNotFoundError, match="no-such-tag"):
        await docker_runtime.ensure_image(unknown, PullPolicy.IF_NOT_PRESENT)
