"""The runtime contract (`contract.py`) run against the in-memory runtime.

The recipes are `fake/script` programs (see `reconciler/runtime/fake_process.py`); the host
side of a published port is read with `MemoryRuntime.host_http_get`, since nothing listens
for real. The Docker side runs the same suite in `tests/integration/runtime/`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reconciler.runtime.memory import MemoryRuntime
from tests.unit.runtime.contract import Harness, Program, RuntimeContract


def _script(*steps: str) -> Program:
    return Program("fake/script", args=steps)


class FakeRecipes:
    def run_forever(self) -> Program:
        return Program("fake/sleep")

    def exit_with(self, code: int, lines: tuple[str, ...] = ()) -> Program:
        return _script(*(f"out:{line}" for line in lines), f"exit:{code}")

    def trap_term(self, code: int) -> Program:
        return _script(f"term:{code}", "out:ready", "wait")

    def ignore_term(self) -> Program:
        return _script("term:ignore", "out:ready", "wait")

    def http_server(self, port: int, body: str) -> Program:
        return _script(f"listen:{port}={body}", "wait")

    def http_get(self, url: str) -> Program:
        return _script(f"get:{url}")

    def early_late(self) -> Program:
        return _script("out:early", "sleep:1.5", "out:late", "wait")

    def ticks(self, count: int, interval_s: float) -> Program:
        return _script(f"ticks:{count}:{interval_s}")

    def write_file(self, path: str, data: str) -> Program:
        return _script(f"write:{path}={data}")

    def cat_file(self, path: str) -> Program:
        return _script(f"cat:{path}")

    def exceed_memory(self) -> Program:
        return _script(f"alloc:{200 * 1024 * 1024}", "exit:0")

    def exec_output(self, out: str, err: str, code: int) -> list[str]:
        return ["fake-script", f"out:{out}", f"err:{err}", f"exit:{code}"]

    def exec_cat_stdin(self) -> list[str]:
        return ["cat"]

    def cat_stdin(self) -> Program:
        return Program("fake/cat")


class TestMemoryRuntime(RuntimeContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[Harness]:
        runtime = MemoryRuntime(
            images=("fake/pause", "fake/sleep", "fake/script", "fake/cat", "recon.local/busybox")
        )

        async def host_get(port: int) -> bytes:
            try:
                return runtime.host_http_get(port)
            except ConnectionRefusedError:
                return b""

        harness = Harness(
            runtime=runtime,
            recipes=FakeRecipes(),
            pause_image="fake/pause",
            local_image="recon.local/busybox",
            missing_image="registry.invalid/recon/missing:1",
            host_get=host_get,
        )
        try:
            yield harness
        finally:
            await harness.cleanup()
            await runtime.close()
