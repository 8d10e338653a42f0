"""The runtime contract (`tests/unit/runtime/contract.py`) run against a real Docker engine.

Recipes are busybox shell (`recon.local/busybox`), the sandbox is `recon.local/pause`, the
host side of a published port is a real TCP connection, and a missing image is asked of a
real registry on 127.0.0.1:5000.
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator

import pytest

from reconciler.runtime.docker import DockerRuntime
from tests.integration.runtime.conftest import BUSYBOX, PAUSE, http_get_from_host, requires_docker
from tests.unit.runtime.contract import Harness, Program, RuntimeContract

pytestmark = [pytest.mark.integration, requires_docker]


def _sh(script: str) -> Program:
    return Program(BUSYBOX, command=("sh", "-c", script))


class ShellRecipes:
    def run_forever(self) -> Program:
        return Program(BUSYBOX, command=("sleep", "3600"))

    def exit_with(self, code: int, lines: tuple[str, ...] = ()) -> Program:
        return _sh("".join(f"echo {shlex.quote(line)}; " for line in lines) + f"exit {code}")

    def trap_term(self, code: int) -> Program:
        return _sh(f"trap 'exit {code}' TERM; echo ready; while :; do sleep 1 & wait $!; done")

    def ignore_term(self) -> Program:
        return _sh("trap '' TERM; echo ready; while :; do sleep 1; done")

    def http_server(self, port: int, body: str) -> Program:
        return _sh(
            f"mkdir -p /tmp/www && printf %s {shlex.quote(body)} > /tmp/www/index.html "
            f"&& exec httpd -f -p {port} -h /tmp/www"
        )

    def http_get(self, url: str) -> Program:
        return _sh(
            f"for i in $(seq 1 50); do wget -qO- {shlex.quote(url)} && exit 0; sleep 0.1; done;"
            " exit 1"
        )

    def early_late(self) -> Program:
        return _sh("echo early; sleep 1.5; echo late; exec sleep 3600")

    def ticks(self, count: int, interval_s: float) -> Program:
        return _sh(f"for i in $(seq 1 {count}); do echo tick $i; sleep {interval_s}; done")

    def write_file(self, path: str, data: str) -> Program:
        return _sh(f"printf %s {shlex.quote(data)} > {shlex.quote(path)}")

    def cat_file(self, path: str) -> Program:
        return Program(BUSYBOX, command=("cat", path))

    def exceed_memory(self) -> Program:
        return _sh("head -c 200m /dev/zero | tail")

    def exec_output(self, out: str, err: str, code: int) -> list[str]:
        return ["sh", "-c", f"echo {shlex.quote(out)}; echo {shlex.quote(err)} >&2; exit {code}"]

    def exec_cat_stdin(self) -> list[str]:
        return ["cat"]

    def cat_stdin(self) -> Program:
        return Program(BUSYBOX, command=("cat",))


class TestDockerRuntime(RuntimeContract):
    @pytest.fixture
    async def harness(
        self,
        docker_runtime: DockerRuntime,
        local_registry: str | None,
        local_only_image: str,
    ) -> AsyncIterator[Harness]:
        harness = Harness(
            runtime=docker_runtime,
            recipes=ShellRecipes(),
            pause_image=PAUSE,
            local_image=local_only_image,
            missing_image=(
                f"{local_registry}/recon-test/missing:{harness_suffix()}"
                if local_registry
                else None
            ),
            host_get=http_get_from_host,
        )
        try:
            yield harness
        finally:
            await harness.cleanup()


def harness_suffix() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
