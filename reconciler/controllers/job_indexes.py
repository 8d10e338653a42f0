"""Indexed Jobs' arithmetic: completion indexes, index sets in upstream's notation, success
policies and each index's failure count. Pure; `job.py` plans with it.

A pod of index i is named `<job>-<i>-<random>`, has the host name `<job>-<i>`, the index in
the `batch.kubernetes.io/job-completion-index` annotation and label and in
`$JOB_COMPLETION_INDEX` (from the annotation, by the downward API).

With `backoffLimitPerIndex` each pod also carries the failures of its index before it, as
upstream's controller writes them: `batch.kubernetes.io/job-index-failure-count` ("0" on the
first pod of an index, "1" on its first retry, ...) and, when a `podFailurePolicy` rule
ignored some, `batch.kubernetes.io/job-index-ignored-failure-count`. The annotations carry
the count across pods that are gone; an index fails once a pod counted as failed had
already `backoffLimitPerIndex` failures before it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reconciler.controllers.job_pods import backoff, finished_at, pod_uid

__all__ = [
    "FAILURE_COUNT_KEY",
    "IGNORED_FAILURE_COUNT_KEY",
    "INDEX_ENV",
    "INDEX_KEY",
    "IndexFailures",
    "annotation_count",
    "completion_index",
    "index_ranges",
    "index_tallies",
    "index_wait",
    "indexed_pod",
    "parse_indexes",
    "success_rule",
]

JSONDict = dict[str, Any]

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-ignored-failure-count"
_MAX_INT32 = 2**31 - 1


@dataclass(frozen=True)
class IndexFailures:
    """The failures of one index so far: those counting toward `backoffLimitPerIndex`, those
    a `podFailurePolicy` rule ignored, and when the latest pod stopped (its back-off runs
    from there)."""

    counted: int = 0
    ignored: int = 0
    last: datetime | None = None

    @property
    def total(self) -> int:
        return self.counted + self.ignored

    def merge(self, other: IndexFailures) -> IndexFailures:
        """The larger tally of two views of the same index (pods' annotations, pods seen,
        pods gone)."""
        stamps = [t for t in (self.last, other.last) if t is not None]
        return IndexFailures(
            max(self.counted, other.counted),
            max(self.ignored, other.ignored),
            max(stamps) if stamps else None,
        )


def completion_index(pod: Mapping[str, Any]) -> int | None:
    """The index an Indexed Job gave the pod (None when it has none it could read)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_KEY)
    try:
        index = int(str(value)) if value is not None else None
    except ValueError:
        return None
    return index if index is None or index >= 0 else None


def annotation_count(pod: Mapping[str, Any], key: str) -> int:
    """A failure-count annotation's value; 0 when absent or not a valid int32 (as upstream's
    `parseInt32`)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        count = int(str(value)) if value is not None else 0
    except ValueError:
        return 0
    return count if 0 <= count <= _MAX_INT32 else 0


def index_ranges(indexes: Iterable[int]) -> str:
    """upstream's index-set notation (`completedIndexes`, `failedIndexes`): a run of three or
    more is a range, two neighbours stay a list. {0, 1, 2, 4, 7, 8} -> "0-2,4,7,8"."""
    parts: list[str] = []
    run: list[int] = []

    def close() -> None:
        if len(run) >= 3:
            parts.append(f"{run[0]}-{run[-1]}")
        else:
            parts.extend(str(i) for i in run)

    for index in sorted(set(indexes)):
        if run and index == run[-1] + 1:
            run.append(index)
            continue
        close()
        run = [index]
    close()
    return ",".join(parts)


def parse_indexes(text: str, limit: int | None = None) -> set[int]:
    """`"0,2-3"` -> {0, 2, 3}: upstream's index-set notation (`completedIndexes`,
    `successPolicy.rules[].succeededIndexes`); with `limit`, only the indexes below it."""
    found: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        try:
            found.update(range(int(first), int(last or first) + 1))
        except ValueError:
            continue  # a corrupted interval, skipped as upstream does
    return found if limit is None else {i for i in found if i < limit}


def success_rule(policy: Mapping[str, Any] | None, done: set[int]) -> int | None:
    """The index of the first `successPolicy` rule the succeeded indexes meet (Indexed
    Jobs): the listed indexes all succeeded, or `succeededCount` of them (of all indexes
    when none are listed)."""
    for index, rule in enumerate((policy or {}).get("rules") or []):
        listed = rule.get("succeededIndexes")
        count = rule.get("succeededCount")
        within = done & parse_indexes(str(listed)) if listed is not None else done
        wanted = int(count) if count is not None else len(parse_indexes(str(listed or "")))
        if wanted and len(within) >= wanted:
            return index
    return None


def indexed_pod(
    pod: JSONDict, job_name: str, index: int, failures: IndexFailures | None = None
) -> JSONDict:
    """A pod of an Indexed Job for `index`, as upstream's controller makes it; `failures`
    (with `backoffLimitPerIndex`) become its failure-count annotations."""
    meta = pod["metadata"]
    meta["generateName"] = f"{job_name}-{index}-"
    annotations = meta.setdefault("annotations", {})
    annotations[INDEX_KEY] = str(index)
    meta.setdefault("labels", {})[INDEX_KEY] = str(index)
    if failures is not None:
        annotations[FAILURE_COUNT_KEY] = str(failures.counted)
        if failures.ignored:
            annotations[IGNORED_FAILURE_COUNT_KEY] = str(failures.ignored)
    spec = json.loads(json.dumps(pod.get("spec") or {}))
    spec.setdefault("hostname", f"{job_name}-{index}"[:63])
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            env = container.setdefault("env", [])
            if not any(e.get("name") == INDEX_ENV for e in env):
                path = f"metadata.annotations['{INDEX_KEY}']"
                env.append({"name": INDEX_ENV, "valueFrom": {"fieldRef": {"fieldPath": path}}})
    pod["spec"] = spec
    return pod


def index_tallies(
    count: int,
    pods: list[JSONDict],
    counted: list[JSONDict],
    ignored: list[JSONDict],
    gone_by_index: Mapping[int, IndexFailures],
) -> dict[int, IndexFailures]:
    """Each index's failures (`backoffLimitPerIndex`): the most any view of it shows — the
    annotations of its pods (a failed pod adds itself to those it carries), the failed pods
    present (`counted` toward the limit, or `ignored` by a `podFailurePolicy` rule), and the
    gone ones the controller tallied. Indexes from `count` on are left out."""
    tallies: dict[int, IndexFailures] = {}

    def add(index: int | None, seen: IndexFailures) -> None:
        if index is not None and index < count:
            tallies[index] = tallies.get(index, IndexFailures()).merge(seen)

    failed_uids = {pod_uid(p) for p in counted}
    ignored_uids = {pod_uid(p) for p in ignored}
    for p in pods:
        is_counted, is_ignored = pod_uid(p) in failed_uids, pod_uid(p) in ignored_uids
        add(
            completion_index(p),
            IndexFailures(
                annotation_count(p, FAILURE_COUNT_KEY) + is_counted,
                annotation_count(p, IGNORED_FAILURE_COUNT_KEY) + is_ignored,
                finished_at(p) if is_counted or is_ignored else None,
            ),
        )
    numbers: dict[int, list[int]] = {}
    for group, slot in ((counted, 0), (ignored, 1)):
        for p in group:
            index = completion_index(p)
            if index is not None:
                numbers.setdefault(index, [0, 0])[slot] += 1
    for index in set(numbers) | set(gone_by_index):
        gone = gone_by_index.get(index, IndexFailures())
        here = numbers.get(index, [0, 0])
        add(index, IndexFailures(here[0] + gone.counted, here[1] + gone.ignored, gone.last))
    return tallies


def index_wait(tally: IndexFailures | None, now: datetime) -> float:
    """Seconds until an index may run again: upstream's per-index back-off, 10 s doubling
    per failure of the index (at most 6 min), from its last failure. Concrete example: an
    index that failed twice, last at 12:00:00, runs again from 12:00:20."""
    if tally is None or not tally.total or tally.last is None:
        return 0.0
    ready_at = tally.last + timedelta(seconds=backoff(tally.total))
    return max(0.0, (ready_at - now).total_seconds())
