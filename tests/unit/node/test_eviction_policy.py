"""Node-pressure eviction decisions: thresholds as the kubelet's flags write them, which
conditions hold and when, which pod goes first, and the kubelet's messages."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reconciler.node.eviction_policy import (
    PressureTracker,
    admission_refusal,
    eviction_message,
    rank_for_eviction,
)
from reconciler.node.eviction_signals import (
    measure,
    parse_loadavg_tasks,
    parse_meminfo_available,
)
from reconciler.node.eviction_thresholds import (
    DEFAULT_HARD,
    Observation,
    ThresholdError,
    eviction_config,
    parse_duration,
    parse_grace_periods,
    parse_thresholds,
)

JSONDict = dict[str, Any]
Mi = 1024 * 1024
Gi = 1024 * Mi


def test_the_kubelets_default_hard_thresholds() -> None:
    found = {t.signal: t for t in parse_thresholds(DEFAULT_HARD)}
    assert set(found) == {
        "memory.available",
        "nodefs.available",
        "imagefs.available",
        "nodefs.inodesFree",
        "imagefs.inodesFree",
    }
    assert found["memory.available"].quantity == 100 * Mi
    assert found["nodefs.available"].percentage == Decimal("0.1")
    assert all(t.hard and t.grace_period_s == 0 for t in found.values())


def test_a_threshold_is_met_below_its_quantity_or_share_of_capacity() -> None:
    memory, disk = parse_thresholds("memory.available<100Mi,nodefs.available<10%")
    assert memory.met(Observation(99 * Mi, 16 * Gi))
    assert not memory.met(Observation(100 * Mi, 16 * Gi))
    assert disk.value(1000) == 100
    assert disk.met(Observation(99, 1000)) and not disk.met(Observation(100, 1000))
    # Messages quote a quantity as written, a percentage as what it comes to here.
    assert memory.shown(16 * Gi) == "100Mi"
    assert disk.shown(10 * Gi) == "1Gi"
    (inodes,) = parse_thresholds("nodefs.inodesFree<5%")
    assert inodes.shown(1_000_000) == "50k"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("memory.available>100Mi", "the only operator is '<'"),
        ("memory.free<100Mi", "unsupported eviction signal 'memory.free'"),
        ("memory.available", "expected <signal><<value>"),
        ("nodefs.available<0%", "must be > 0% and <= 100%: 0%"),
        ("nodefs.available<150%", "must be > 0% and <= 100%: 150%"),
        ("memory.available<lots", "invalid eviction threshold 'memory.available<lots'"),
        ("memory.available<1Gi,memory.available<2Gi", "memory.available is given twice"),
    ],
)
def test_bad_thresholds_are_refused_naming_the_entry(text: str, problem: str) -> None:
    with pytest.raises(ThresholdError) as caught:
        parse_thresholds(text)
    assert problem in str(caught.value)


def test_soft_thresholds_need_a_grace_period_each() -> None:
    graces = parse_grace_periods("memory.available=1m30s")
    (soft,) = parse_thresholds("memory.available<1Gi", hard=False, grace_periods=graces)
    assert not soft.hard and soft.grace_period_s == 90
    with pytest.raises(ThresholdError, match=r"nodefs\.available has no grace period"):
        parse_thresholds("nodefs.available<20%", hard=False, grace_periods=graces)
    with pytest.raises(ThresholdError, match="without a soft eviction threshold"):
        parse_thresholds("", hard=False, grace_periods=graces)
    with pytest.raises(ThresholdError, match="expected <signal>=<duration>"):
        parse_grace_periods("memory.available:1m")


def test_durations_and_the_whole_config() -> None:
    assert parse_duration("1m30s") == 90 and parse_duration("0s") == 0
    assert parse_duration("500ms") == 0.5 and parse_duration("0") == 0
    with pytest.raises(ThresholdError, match="not a duration"):
        parse_duration("ten minutes")
    config = eviction_config(
        "memory.available<100Mi", "memory.available<1Gi", "memory.available=30s", "1m", 20, "5s"
    )
    assert [t.hard for t in config.thresholds] == [True, False]
    assert (config.transition_period_s, config.max_pod_grace_period_s) == (60, 20)
    assert config.interval_s == 5
    assert eviction_config("").thresholds == ()
    with pytest.raises(ThresholdError, match="must be positive"):
        eviction_config("", interval="0s")


def test_conditions_hold_for_the_transition_period_and_soft_thresholds_wait() -> None:
    thresholds = parse_thresholds("memory.available<100Mi") + parse_thresholds(
        "nodefs.available<20%", hard=False, grace_periods={"nodefs.available": 60}
    )
    tracker = PressureTracker(thresholds, transition_period_s=300)
    low_memory = Observation(50 * Mi, Gi)
    low_disk = Observation(10, 100)
    plenty = {"memory.available": Observation(Gi, 2 * Gi), "nodefs.available": Observation(90, 100)}

    first = tracker.observe({"memory.available": low_memory, "nodefs.available": low_disk}, 0)
    assert first.conditions == {"MemoryPressure", "DiskPressure"}
    # The hard threshold acts at once; the soft one not before its grace period.
    assert [t.signal for t, _ in first.acting] == ["memory.available"]
    later = tracker.observe({"memory.available": low_memory, "nodefs.available": low_disk}, 60)
    assert [t.signal for t, _ in later.acting] == ["memory.available", "nodefs.available"]
    # Relief: nothing acts, but the conditions stay for the transition period.
    relieved = tracker.observe(plenty, 100)
    assert relieved.acting == () and relieved.conditions == {"MemoryPressure", "DiskPressure"}
    assert tracker.observe(plenty, 359).conditions == {"MemoryPressure", "DiskPressure"}
    assert tracker.observe(plenty, 360).conditions == frozenset()
    # A soft threshold met again starts its grace period over.
    again = tracker.observe({"nodefs.available": low_disk}, 400)
    assert again.conditions == {"DiskPressure"} and again.acting == ()


def test_without_a_transition_period_conditions_follow_the_signal() -> None:
    tracker = PressureTracker(parse_thresholds("pid.available<10%"), transition_period_s=0)
    assert tracker.observe({"pid.available": Observation(5, 100)}, 0).conditions == {"PIDPressure"}
    assert tracker.observe({"pid.available": Observation(50, 100)}, 1).conditions == frozenset()
    # A signal that could not be measured counts as not met.
    assert tracker.observe({}, 2).acting == ()


def pod(name: str, priority: int = 0, request: str | None = None, **spec: Any) -> JSONDict:
    resources = {"requests": {"memory": request}} if request else {}
    return {
        "metadata": {"name": name, "uid": f"uid-{name}"},
        "spec": {
            "priority": priority,
            "containers": [{"name": "app", "image": "x", "resources": resources}],
            **spec,
        },
    }


def test_memory_evicts_pods_over_their_requests_first_then_by_priority_then_excess() -> None:
    a = pod("a", 0, "64Mi")
    b = pod("b", 1000)
    c = pod("c", 0, "1Gi")
    d = pod("d", 0)
    use = {
        "uid-a": {"app": 200 * Mi},
        "uid-b": {"app": 10 * Mi},
        "uid-c": {"app": 300 * Mi},
        "uid-d": {"app": 500 * Mi},
    }
    ranked = rank_for_eviction([c, b, a, d], "memory", use)
    # d and a are over their requests at priority 0, d by more; b is over at 1000; c is not.
    assert [p["metadata"]["name"] for p in ranked] == ["d", "a", "b", "c"]
    # Other resources: by priority alone, lowest first, in the order given otherwise.
    ranked = rank_for_eviction([b, c, a], "ephemeral-storage", use)
    assert [p["metadata"]["name"] for p in ranked] == ["c", "a", "b"]


def test_the_kubelets_eviction_message() -> None:
    (threshold,) = parse_thresholds("memory.available<100Mi")
    message = eviction_message(
        threshold, Observation(80 * Mi, 16 * Gi), pod("a", 0, "64Mi"), {"app": 200 * Mi}
    )
    assert message == (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. "
        "Container app was using 200Mi, request is 64Mi, has larger consumption of memory. "
    )
    # Within its request: no container sentence; an unmeasured container neither.
    assert eviction_message(
        threshold, Observation(81920 * 1024, 16 * Gi), pod("c", 0, "1Gi"), {"app": 300 * Mi}
    ).endswith("available: 80Mi. ")
    (disk,) = parse_thresholds("nodefs.available<10%")
    assert eviction_message(disk, Observation(5 * Gi, 100 * Gi), pod("d"), {}) == (
        "The node was low on resource: ephemeral-storage. "
        "Threshold quantity: 10Gi, available: 5Gi. "
    )


def test_admission_under_pressure() -> None:
    best_effort = pod("be")
    burstable = pod("bu", request="64Mi")
    tolerant = pod(
        "tol",
        tolerations=[{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists"}],
    )
    critical = pod("crit", priority=2_000_001_000)
    assert admission_refusal(best_effort, []) is None
    memory = ["MemoryPressure"]
    assert admission_refusal(best_effort, memory) == "The node had condition: [MemoryPressure]. "
    assert admission_refusal(burstable, memory) is None
    assert admission_refusal(tolerant, memory) is None
    both = ["DiskPressure", "MemoryPressure"]
    assert admission_refusal(burstable, both) == (
        "The node had condition: [MemoryPressure DiskPressure]. "
    )
    assert admission_refusal(tolerant, ["PIDPressure"]) == "The node had condition: [PIDPressure]. "
    assert admission_refusal(critical, both) is None


def test_signals_from_proc_and_the_filesystems(tmp_path: Path) -> None:
    meminfo = "MemTotal:       16384 kB\nMemFree:  1024 kB\nMemAvailable:    4096 kB\n"
    assert parse_meminfo_available(meminfo) == Observation(4096 * 1024, 16384 * 1024)
    assert parse_loadavg_tasks("0.52 0.58 0.59 3/467 12345\n") == 467
    proc = tmp_path / "proc"
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "meminfo").write_text(meminfo)
    (proc / "loadavg").write_text("0.52 0.58 0.59 3/467 12345\n")
    (proc / "sys/kernel/pid_max").write_text("4194304\n")
    (proc / "sys/kernel/threads-max").write_text("1000\n")
    found = measure(tmp_path, None, proc)
    assert found["memory.available"] == Observation(4096 * 1024, 16384 * 1024)
    assert found["pid.available"] == Observation(533, 1000)
    nodefs = found["nodefs.available"]
    assert 0 < nodefs.available <= nodefs.capacity
    assert found["nodefs.inodesFree"].capacity > 0
    assert not any(name.startswith("imagefs") for name in found)
    # What cannot be read is left out, not guessed.
    assert measure(tmp_path / "missing", None, tmp_path / "noproc") == {}
