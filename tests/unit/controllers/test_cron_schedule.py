"""Cron arithmetic in Kubernetes' dialect, over a table of schedules and a simulated day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconciler.controllers.cron_schedule import ScheduleError, parse

T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/5 * * * *", T0, T0 + timedelta(minutes=5)),
        ("* * * * *", T0 + timedelta(seconds=30), T0 + timedelta(minutes=1)),
        ("@hourly", T0, T0 + timedelta(hours=1)),
        ("@daily", T0, T0 + timedelta(days=1)),
        ("@weekly", T0, datetime(2026, 1, 4, tzinfo=UTC)),  # Sunday
        ("0 0 * * 0", T0, datetime(2026, 1, 4, tzinfo=UTC)),
        ("0 0 * * 7", T0, datetime(2026, 1, 4, tzinfo=UTC)),
        ("0 0 * * 1", T0, datetime(2026, 1, 5, tzinfo=UTC)),  # Monday
        ("0 9 * * 1-5", T0 + timedelta(hours=10), datetime(2026, 1, 2, 9, tzinfo=UTC)),
        ("0 0 * * */2", T0, datetime(2026, 1, 3, tzinfo=UTC)),  # sun,tue,thu,sat: Saturday next
        ("0 0 13 * 5", T0, datetime(2026, 1, 2, tzinfo=UTC)),  # either the 13th or a Friday
        ("@monthly", T0, datetime(2026, 2, 1, tzinfo=UTC)),
        ("@yearly", T0, datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_next_after(schedule: str, after: datetime, expected: datetime) -> None:
    assert parse(schedule).next_after(after) == expected


def test_time_zone() -> None:
    berlin = parse("0 9 * * *", "Europe/Berlin")
    assert berlin.next_after(T0) == datetime(2026, 1, 1, 8, tzinfo=UTC)


def test_a_day_of_every_five_minutes() -> None:
    times = parse("*/5 * * * *").missed(T0, T0 + timedelta(days=1), limit=1000)
    assert len(times) == 288
    assert times[0] == T0 + timedelta(minutes=5) and times[-1] == T0 + timedelta(days=1)


def test_missed_stops_after_the_limit() -> None:
    times = parse("* * * * *").missed(T0, T0 + timedelta(hours=5), limit=100)
    assert len(times) == 101


@pytest.mark.parametrize(
    "bad", ["* * * *", "61 * * * *", "* * * * 8", "TZ=UTC * * * * *", "@sometimes"]
)
def test_bad_schedules_are_clear_errors(bad: str) -> None:
    with pytest.raises(ScheduleError):
        parse(bad)


def test_unknown_time_zone() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone"):
        parse("* * * * *", "Mars/Olympus")


def test_next_after_a_fraction_of_a_second_before_a_run() -> None:
    schedule = parse("*/5 * * * *")
    assert schedule.next_after(T0 + timedelta(minutes=4, seconds=59, microseconds=500_000)) == (
        T0 + timedelta(minutes=5)
    )
    assert schedule.next_after(T0 + timedelta(minutes=5)) == T0 + timedelta(minutes=10)


@pytest.mark.parametrize(
    ("schedule", "since", "now", "expected"),
    [
        ("* * * * *", T0, T0 + timedelta(days=3650, seconds=30), T0 + timedelta(days=3650)),
        ("*/5 * * * *", T0, T0 + timedelta(minutes=4), None),
        ("*/5 * * * *", T0 + timedelta(minutes=5), T0 + timedelta(minutes=9), None),
        ("*/5 * * * *", T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=5)),
        # Monday to Friday at 9: a Sunday evening looks back to Friday.
        (
            "0 9 * * 1-5",
            T0,
            datetime(2026, 1, 4, 20, tzinfo=UTC),
            datetime(2026, 1, 2, 9, tzinfo=UTC),
        ),
        ("@yearly", T0 - timedelta(days=1), T0 + timedelta(days=300), T0),
    ],
)
def test_latest(schedule: str, since: datetime, now: datetime, expected: datetime | None) -> None:
    assert parse(schedule).latest(since, now) == expected
