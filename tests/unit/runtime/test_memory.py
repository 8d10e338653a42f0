"""The in-memory runtime's own promises, beyond the contract: it says nothing runs, it is
scriptable (image names, programs, fed logs, failing pulls, an engine restart), grace
periods follow the injected clock, and thousands of pods are cheap."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import tracemalloc
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
from reconciler.runtime.fake_process import FakeProcess, Flag
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


async def test_a_waiting_container_holds_one_task_and_still_ends_on_sigterm(
    runtime: MemoryRuntime,
) -> None:
    """Sandboxes and most containers wait for SIGTERM from start to end: that wait is on the
    process's flag itself, without a second task per container (and `asyncio.wait`'s
    bookkeeping) as a timed sleep needs (≈2.4 KB per container)."""
    await runtime.ensure_network("n")
    before = len(asyncio.all_tasks())
    started = []
    for i in range(5):
        sandbox = await runtime.run_sandbox(
            SandboxSpec(
                pod_uid=f"u{i}", name=f"p{i}", namespace="ns", image="fake/pause", network="n"
            )
        )
        app = await runtime.create_container(
            ContainerSpec(name=f"p{i}-app", image="fake/sleep", sandbox=sandbox.id)
        )
        await runtime.start_container(app)
        started += [sandbox.id, app]
    for _ in range(3):
        await asyncio.sleep(0)  # every program reaches its wait
    assert len(asyncio.all_tasks()) - before == len(started)
    sandbox_id, app_id = started[:2]
    await runtime.stop_container(app_id, timeout_s=30)
    await runtime.stop_container(sandbox_id, timeout_s=30)
    assert (await runtime.inspect(app_id)).exit_code == 143  # SIGTERM, not the kill
    assert (await runtime.inspect(sandbox_id)).exit_code == 0  # the pause binary's


async def test_a_running_pod_costs_a_few_kilobytes(runtime: MemoryRuntime) -> None:
    """What the runtime allocates for a started pod (sandbox and app container), measured
    with tracemalloc: 9.7 KB a container before its events became `Flag`s, its SIGTERM
    wait stopped needing a task, and its process's callbacks one small object; 4.4 KB
    after. The GitOps benchmark's first sync keeps 666 of them."""
    await runtime.ensure_network("n")
    pods = 200
    specs = [
        SandboxSpec(
            pod_uid=f"uid-{i}",
            name=f"web-{i}",
            namespace="default",
            image="fake/pause",
            network="n",
            labels={"attempt": "0"},
            dns_aliases=(f"web-{i}",),
        )
        for i in range(pods)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        for spec in specs:
            sandbox = await runtime.run_sandbox(spec)
            app = await runtime.create_container(
                ContainerSpec(
                    name=f"{spec.name}-app",
                    image="fake/sleep",
                    sandbox=sandbox.id,
                    labels={POD_UID_LABEL: spec.pod_uid},
                )
            )
            await runtime.start_container(app)
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_container = used / (2 * pods)
    assert per_container < 7000, f"{per_container:.0f} bytes per container"


async def test_flags_wake_every_waiter_once_set_and_keep_nothing_for_none() -> None:
    flag = Flag()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    cancelled = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert not flag.is_set() and not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert cancelled.cancelled()
    assert flag.is_set() and await flag.wait() is True  # set stays set
    assert flag._waiters == []
    assert Flag()._waiters is None  # nothing allocated until someone waits


async def test_states_and_events_show_a_containers_labels_read_only(
    runtime: MemoryRuntime,
) -> None:
    """Labels never change after creation, so a listing hands out views of them, not a
    copy per state (the node agent keeps a state of every container)."""
    events = await runtime.events()
    container_id = await _run(runtime, "labelled", "fake/sleep", labels={"app": "web"})
    [state] = await runtime.list_containers({"app": "web"})
    assert state.labels["app"] == "web" and state.id == container_id
    with pytest.raises(TypeError):
        state.labels["app"] = "other"  # type: ignore[index]
    event = await anext(aiter(events))
    assert event.labels["app"] == "web"
    with pytest.raises(TypeError):
        event.labels["app"] = "other"  # type: ignore[index]
    assert (await runtime.inspect(container_id)).labels["app"] == "web"
    await events.aclose()
