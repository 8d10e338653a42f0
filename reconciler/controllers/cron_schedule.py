"""CronJob schedules: standard five-field cron and the `@hourly`-style macros, in a time zone.

Times are computed by apscheduler's `CronTrigger`; this module only makes its dialect match
the one Kubernetes uses (robfig/cron, Vixie semantics):

- day of week counts from Sunday = 0 (7 is Sunday too), where apscheduler counts from
  Monday: the field is expanded to explicit day names;
- when both day of month and day of week are restricted, a time matches if *either* does
  (apscheduler requires both): the schedule is then the earlier of two triggers.

Pure: `next_after` and `missed` take the time; nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAME_TO_NUMBER = {name: i for i, name in enumerate(_DAY_NAMES)}


class ScheduleError(ValueError):
    """An unparseable schedule or unknown time zone; the message names the problem."""


def _day_number(token: str) -> int:
    token = token.lower()
    if token in _NAME_TO_NUMBER:
        return _NAME_TO_NUMBER[token]
    if not token.isdigit() or not 0 <= int(token) <= 7:
        raise ScheduleError(f"day of week {token!r} is not 0-7 or sun-sat")
    return int(token) % 7


def _expand_day_of_week(field: str) -> list[int]:
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ScheduleError(f"step {step_text!r} in day of week must be positive")
        if base in ("*", "?"):
            low, high = 0, 6
        elif "-" in base:
            a, b = base.split("-", 1)
            low, high = _day_number(a), _day_number(b)
            if b == "7":
                high = 7
        else:
            low = _day_number(base)
            high = 6 if step_text else low
        days.update(d % 7 for d in range(low, high + 1, step))
    return sorted(days)


@dataclass(frozen=True)
class Schedule:
    triggers: tuple[CronTrigger, ...]

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled time strictly after `moment`."""
        start = moment + timedelta(microseconds=1)  # the trigger rounds up to whole seconds
        times: list[datetime | None] = [t.get_next_fire_time(None, start) for t in self.triggers]
        found = [t for t in times if t is not None]
        if not found:
            raise ScheduleError("the schedule never fires")
        return min(found)

    def missed(self, since: datetime, now: datetime, limit: int = 100) -> list[datetime]:
        """Scheduled times in (since, now], oldest first, at most `limit` + 1 of them (so a
        caller can tell "more than `limit`" apart)."""
        out: list[datetime] = []
        moment = since
        while len(out) <= limit:
            moment = self.next_after(moment)
            if moment > now:
                break
            out.append(moment)
        return out

    def latest(self, since: datetime, now: datetime) -> datetime | None:
        """The most recent scheduled time in (since, now], or None: found by looking back
        from `now` over a window that doubles (1 min, 2 min, ...) until one fires in it, so
        that years of missed runs cost a few dozen steps, not one per run."""
        window = timedelta(minutes=1)
        while True:
            start = max(since, now - window)
            found = None
            moment = self.next_after(start)
            while moment <= now:
                found = moment
                moment = self.next_after(moment)
            if found is not None or start == since:
                return found
            window *= 2


def parse(schedule: str, time_zone: str | None = None) -> Schedule:
    text = schedule.strip()
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        raise ScheduleError(
            "TZ= in the schedule is not supported: use the CronJob's spec.timeZone field"
        )
    text = MACROS.get(text.lower(), text)
    fields = text.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"schedule {schedule!r} must have 5 fields (minute hour day-of-month month "
            "day-of-week) or be one of " + ", ".join(sorted(MACROS))
        )
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ScheduleError(f"unknown time zone {time_zone!r}") from e
    minute, hour, dom, month, dow = fields
    try:
        days = ",".join(_DAY_NAMES[d] for d in _expand_day_of_week(dow))
    except ValueError as e:
        raise ScheduleError(str(e)) from e

    def trigger(day: str, week: str) -> CronTrigger:
        try:
            return CronTrigger(
                minute=minute, hour=hour, day=day, month=month, day_of_week=week, timezone=zone
            )
        except ValueError as e:
            raise ScheduleError(f"schedule {schedule!r}: {e}") from e

    dom_restricted = dom not in ("*", "?")
    dow_restricted = dow not in ("*", "?") and not re.fullmatch(r"\*/1", dow)
    if dom_restricted and dow_restricted:
        return Schedule((trigger(dom, "*"), trigger("*", days)))
    return Schedule((trigger(dom if dom != "?" else "*", days),))
