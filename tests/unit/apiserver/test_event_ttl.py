"""Events expire an hour (`--event-ttl`) after their last write, as kube-apiserver's do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.apiserver.event_ttl import last_written
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.cli.main import cli
from reconciler.client.errors import NotFoundError
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import ManualClock, rfc3339
from reconciler.durations import parse_go_duration

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(name: str, when: datetime, api: str = "v1") -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": api,
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "reason": "Tested",
    }
    if api == "v1":
        body |= {
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "message": "hello",
            "firstTimestamp": rfc3339(when),
            "lastTimestamp": rfc3339(when),
            "count": 1,
        }
    else:
        body |= {
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
            "note": "hello",
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": "tests",
            "reportingInstance": "tests-1",
            "action": "Testing",
            "type": "Normal",
        }
    return body


async def start(tmp_path: Path, clock: ManualClock) -> tuple[ApiServer, InProcessClient]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0), clock)
    await server.start()
    return server, InProcessClient(server.service)


@pytest.fixture
async def clock() -> AsyncIterator[ManualClock]:
    yield ManualClock(START)


async def names(client: InProcessClient, api: str = "v1") -> set[str]:
    listed = await client.list(api, "Event", "default")
    return {e["metadata"]["name"] for e in listed.items}


async def test_an_event_goes_an_hour_after_its_last_write(
    tmp_path: Path, clock: ManualClock
) -> None:
    server, client = await start(tmp_path, clock)
    try:
        await client.create(event("once", START))
        await client.create(event("repeated", START))
        await client.create(event("new-api", START, "events.k8s.io/v1"))
        clock.advance(59 * 60)
        assert server.event_expiry.sweep() == 0
        # A repeat (count bumped) renews the Event's hour, as each write renews an etcd TTL.
        await client.patch("v1", "Event", "repeated", {"count": 2}, namespace="default")
        clock.advance(60)
        assert server.event_expiry.sweep() == 2
        assert await names(client) == {"repeated"}
        assert await names(client, "events.k8s.io/v1") == set()
        clock.advance(59 * 60)
        assert server.event_expiry.sweep() == 1
        with pytest.raises(NotFoundError):
            await client.get("v1", "Event", "repeated", "default")
    finally:
        await server.stop()


async def test_expiry_runs_by_itself(tmp_path: Path, clock: ManualClock) -> None:
    server, client = await start(tmp_path, clock)
    try:
        await client.create(event("e", START))
        for _ in range(11):  # sweeps every 6 minutes for a 1 h TTL
            clock.advance(6 * 60)
            await asyncio.sleep(0.01)
        for _ in range(200):
            if not await names(client):
                break
            await asyncio.sleep(0.01)
        assert await names(client) == set()
    finally:
        await server.stop()


async def test_after_a_restart_the_events_own_times_count(
    tmp_path: Path, clock: ManualClock
) -> None:
    server, client = await start(tmp_path, clock)
    await client.create(event("old", START))
    clock.advance(50 * 60)
    await client.create(event("fresh", START + timedelta(minutes=50)))
    await server.stop()
    clock.advance(15 * 60)
    server, client = await start(tmp_path, clock)
    try:
        server.event_expiry.sweep()  # the first sweep runs at start; this one makes sure
        assert await names(client) == {"fresh"}
    finally:
        await server.stop()


def test_the_last_write_is_the_latest_time_an_event_carries() -> None:
    assert last_written(
        {
            "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
            "lastTimestamp": "2026-01-01T00:10:00Z",
            "series": {"lastObservedTime": "2026-01-01T00:20:00.000000Z"},
        }
    ) == datetime(2026, 1, 1, 0, 20, tzinfo=UTC)
    assert last_written({"metadata": {}, "lastTimestamp": "not a time"}) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("1h30m", 5400), ("500ms", 0.5), ("1.5m", 90), ("0", 0), ("2m0s", 120)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "5x", "1h 30m", "-"])
def test_what_is_not_a_go_duration_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text)):
        parse_go_duration(text)


@pytest.mark.parametrize(("value", "said"), [("5x", "'5x' is not a duration"), ("0s", "longer")])
def test_a_bad_event_ttl_stops_recon_serve_before_it_starts(
    tmp_path: Path, value: str, said: str
) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--data-dir", str(tmp_path / "data"), "--event-ttl", value]
    )
    assert result.exit_code == 2
    assert "--event-ttl" in result.output and said in result.output
    assert not (tmp_path / "data").exists()  # nothing was set up
