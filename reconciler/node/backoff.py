"""The kubelet's restart back-off (CrashLoopBackOff and ImagePullBackOff). Pure, clock-free.

The first restart is immediate; each further one waits twice as long as the last (10 s,
20 s, 40 s ... capped at 5 min), counted from the previous start. A container that ran for
10 minutes before it exited starts over at 10 s. Times are monotonic seconds passed in by
the caller, so the agent's injected clock drives it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass
class _Entry:
    delay: float
    last: float


class Backoff:
    def __init__(
        self, initial: float = 10.0, cap: float = 300.0, reset_after: float = 600.0
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.reset_after = reset_after
        self._entries: dict[str, _Entry] = {}

    def wait_until(self, key: str, now: float, ran_for: float | None = None) -> float | None:
        """When `key` may start again: None if now (a start is then recorded), else the time."""
        entry = self._entries.get(key)
        if entry is not None and ran_for is not None and ran_for >= self.reset_after:
            del self._entries[key]
            entry = None
        if entry is None:
            self._entries[key] = _Entry(self.initial, now)
            return None
        due = entry.last + entry.delay
        if now < due:
            return due
        entry.delay = min(entry.delay * 2, self.cap)
        entry.last = now
        return None

    def delay(self, key: str) -> float:
        """The back-off that applies to `key` now (for the CrashLoopBackOff message)."""
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
