"""The in-memory runtime's own promises, beyond the contract: it says nothing runs, it is
scriptable (image names, programs, fed logs, failing pulls, an engine restart), grace
periods follow the injected clock, and thousands of pods are cheap."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from reconciler.clock import ManualClock
from reconciler.runtime.base import (
    POD_UID_LABEL,
    ROLE_LABEL,
    ContainerSpec,
    ContainerStatus,
    EventKind,
    PortMapping,
    PullPolicy,
    SandboxSpec,
    run_exec,
)
from reconciler.runtime.errors import ImageNotFoundError, ImagePullError, RuntimeUnavailableError
from reconciler.runtime.fake_process import FakeProcess
from reconciler.runtime.memory import MemoryRuntime


@pytest.fixture
async def runtime() -> AsyncIterator[MemoryRuntime]:
    runtime = MemoryRuntime(images=("fake/pause", "fake/sleep"))
    try:
        yield runtime
    finally:
        await runtime.close()


async def _run(runtime: MemoryRuntime, name: str, image: str, **extra: object) -> str:
    await runtime.ensure_image(image, PullPolicy.IF_NOT_PRESENT)
    container_id = await runtime.create_container(ContainerSpec(name=name, image=image, **extra))  # type: ignore[arg-type]
    await runtime.start_container(container_id)
    return container_id


async def test_it_says_loudly_that_nothing_runs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="reconciler.runtime.memory"):
        runtime = MemoryRuntime()
    await runtime.close()
    assert "NOTHING REALLY RUNS" in caplog.text
    assert MemoryRuntime.__doc__ is not None and "NOTHING REALLY RUNS" in (
        __import__("reconciler.runtime.memory", fromlist=["x"]).__doc__ or ""
    )


async def test_exit_code_from_the_image_name(runtime: MemoryRuntime) -> None:
    container_id = await _run(runtime, "crash", "fake/exit:3")
    assert await runtime.wait(container_id) == 3
    assert (await runtime.inspect(container_id)).exit_code == 3


async def test_registered_program(runtime: MemoryRuntime) -> None:
    async def program(proc: FakeProcess) -> int:
        proc.stdout(f"env={proc.env['GREETING']} argv={' '.join(proc.argv)}\n")
        return 9

    runtime.register_program("example/app", program)
    runtime.add_local_image("example/app:1.0")
    container_id = await _run(
        runtime, "app", "example/app:1.0", args=("--port", "80"), env={"GREETING": "hi"}
    )
    assert await runtime.wait(container_id) == 9
    logs = b"".join([c async for c in runtime.logs(container_id)])
    assert logs == b"env=hi argv=--port 80\n"


async def test_fed_logs_reach_a_follower(runtime: MemoryRuntime) -> None:
    container_id = await _run(runtime, "quiet", "fake/sleep")
    stream = runtime.logs(container_id, follow=True)
    runtime.feed_logs(container_id, b"one\ntwo\n")
    assert await anext(stream) == b"one\n"
    runtime.feed_logs(container_id, b"three\n", stream="stderr")
    assert await anext(stream) == b"two\n"
    assert await anext(stream) == b"three\n"
    await runtime.stop_container(container_id, 5)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_grace_period_follows_the_injected_clock() -> None:
    clock = ManualClock()
    runtime = MemoryRuntime(clock=clock, images=("fake/ignore-sigterm",))
    try:
        container_id = await _run(runtime, "stubborn", "fake/ignore-sigterm")
        stopping = asyncio.ensure_future(runtime.stop_container(container_id, 30))
        await asyncio.sleep(0.01)
        assert not stopping.done()  # SIGTERM ignored; 30 s have not passed on the clock
        clock.advance(29)
        await asyncio.sleep(0.01)
        assert not stopping.done()
        clock.advance(1)
        await asyncio.wait_for(stopping, 1)
        state = await runtime.inspect(container_id)
        assert state.exit_code == 137
        assert state.finished_at == clock.now()
    finally:
        await runtime.close()


async def test_pulls_are_counted_and_can_fail(runtime: MemoryRuntime) -> None:
    await runtime.ensure_image("fake/web:1", PullPolicy.IF_NOT_PRESENT)
    await runtime.ensure_image("fake/web:1", PullPolicy.IF_NOT_PRESENT)
    assert runtime.pull_counts["fake/web:1"] == 1
    await runtime.ensure_image("fake/web:1", PullPolicy.ALWAYS)
    assert runtime.pull_counts["fake/web:1"] == 2
    runtime.fail_pulls["fake/flaky:latest"] = "registry unavailable"
    with pytest.raises(ImagePullError, match="registry unavailable") as caught:
        await runtime.ensure_image("fake/flaky", PullPolicy.IF_NOT_PRESENT)
    assert not isinstance(caught.value, ImageNotFoundError)
    runtime.add_registry_image("example.com/app:2")
    await runtime.ensure_image("example.com/app:2", PullPolicy.IF_NOT_PRESENT)


async def test_exec_program_and_tty_size(runtime: MemoryRuntime) -> None:
    container_id = await _run(runtime, "shell", "fake/sleep")
    result = await run_exec(runtime, container_id, ["echo", "hello", "world"])
    assert (result.exit_code, result.stdout) == (0, b"hello world\n")
    assert (await run_exec(runtime, container_id, ["no-such-tool"])).exit_code == 127

    async def probe(proc: FakeProcess) -> int:
        return 0 if proc.argv == ("cat", "/tmp/healthy") else 1

    runtime.set_exec_program(probe)
    assert (await run_exec(runtime, container_id, ["cat", "/tmp/healthy"])).exit_code == 0
    session = await runtime.exec(container_id, ["sh"], tty=True, stdin=True)
    await session.resize(120, 40)
    assert session.size == (120, 40)
    await session.close()


async def test_engine_restart_kills_containers_and_breaks_event_streams(
    runtime: MemoryRuntime,
) -> None:
    events = await runtime.events()
    container_id = await _run(runtime, "victim", "fake/sleep")
    await runtime.simulate_engine_restart()
    seen = []
    with pytest.raises(RuntimeUnavailableError):
        async for event in events:
            seen.append(event.kind)
    assert seen == [EventKind.CREATED, EventKind.STARTED, EventKind.DIED]
    assert (await runtime.inspect(container_id)).status is ContainerStatus.EXITED


async def test_thousands_of_pods_are_cheap() -> None:
    """2,000 pods (sandbox + app container) created, listed and removed: a few seconds at
    most on a small machine (the budget is loose; the point is no per-pod real work)."""
    runtime = MemoryRuntime(images=("fake/pause", "fake/sleep"))
    pods = 2000
    try:
        await runtime.ensure_network("bench")
        started = time.perf_counter()
        for i in range(pods):
            sandbox = await runtime.run_sandbox(
                SandboxSpec(
                    pod_uid=f"uid-{i}",
                    name=f"p{i}",
                    namespace="bench",
                    image="fake/pause",
                    network="bench",
                    ports=(PortMapping(80),),
                    labels={"bench": "yes"},
                )
            )
            app = await runtime.create_container(
                ContainerSpec(
                    name=f"p{i}-app",
                    image="fake/sleep",
                    sandbox=sandbox.id,
                    labels={"bench": "yes", "pod": f"p{i}"},
                )
            )
            await runtime.start_container(app)
        created = time.perf_counter() - started
        listed = await runtime.list_containers({"bench": "yes"})
        assert len(listed) == 2 * pods
        assert all(s.status is ContainerStatus.RUNNING for s in listed)
        assert len(await runtime.list_containers({"pod": "p7"})) == 1
        for state in listed:
            await runtime.remove_container(state.id)
        total = time.perf_counter() - started
        assert await runtime.list_containers() == []
        assert total < 20, f"{pods} pods took {total:.1f}s (created in {created:.1f}s)"
    finally:
        await runtime.close()


class _Untouchable(dict[str, str]):
    """Labels that fail the test when read: for containers a listing must not look at."""

    def get(self, key: str, default: object = None) -> str:  # type: ignore[override]
        raise AssertionError(f"read label {key} of a container of another pod")


async def _pod(runtime: MemoryRuntime, uid: str, apps: int = 1) -> None:
    sandbox = await runtime.run_sandbox(
        SandboxSpec(pod_uid=uid, name=f"p-{uid}", namespace="ns", image="fake/pause", network="n")
    )
    for i in range(apps):
        await runtime.create_container(
            ContainerSpec(
                name=f"p-{uid}-app{i}",
                image="fake/sleep",
                sandbox=sandbox.id,
                labels={POD_UID_LABEL: uid, "app": str(i)},
            )
        )


async def _scan(runtime: MemoryRuntime, selector: dict[str, str]) -> list[str]:
    """What a listing must return: every container whose labels match, in creation order."""
    everything = await runtime.list_containers()
    return [s.id for s in everything if all(s.labels.get(k) == v for k, v in selector.items())]


async def test_listing_by_pod_uid_matches_a_scan_through_creates_and_removes(
    runtime: MemoryRuntime,
) -> None:
    await runtime.ensure_network("n")
    for uid in ("a", "b", "c"):
        await _pod(runtime, uid, apps=2)
    [first_app] = await runtime.list_containers({POD_UID_LABEL: "b", "app": "0"})
    await runtime.remove_container(first_app.id)
    for state in await runtime.list_containers({POD_UID_LABEL: "c"}):
        await runtime.remove_container(state.id)
    await _pod(runtime, "c")  # the same pod again, after all its containers went
    selectors: list[dict[str, str]] = [
        {POD_UID_LABEL: uid, **extra}
        for uid in ("a", "b", "c", "gone")
        for extra in ({}, {"app": "1"}, {ROLE_LABEL: "sandbox"}, {"app": "nope"})
    ]
    for selector in selectors:
        listed = [s.id for s in await runtime.list_containers(selector)]
        assert listed == await _scan(runtime, selector), selector
    assert [s.labels.get("app") for s in await runtime.list_containers({POD_UID_LABEL: "b"})] == [
        None,
        "1",
    ]
    assert await runtime.list_containers({POD_UID_LABEL: "gone"}) == []


async def test_listing_by_pod_uid_reads_only_that_pods_containers(
    runtime: MemoryRuntime,
) -> None:
    """What the node agent asks on every pod sync must not cost a scan of every container
    (1,000 pods made it 8 million label comparisons per 1,000 syncs)."""
    await runtime.ensure_network("n")
    for i in range(50):
        await _pod(runtime, f"uid-{i}")
    for state in await runtime.list_containers():
        if state.labels[POD_UID_LABEL] != "uid-7":
            runtime._get(state.id).labels = _Untouchable(state.labels)
    listed = await runtime.list_containers({POD_UID_LABEL: "uid-7"})
    assert sorted(s.labels[ROLE_LABEL] for s in listed) == ["container", "sandbox"]
