"""The HPA's arithmetic: replica proposals, metrics parsing, stabilization and rate policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.clock import rfc3339
from reconciler.controllers.hpa_behavior import (
    History,
    Recommendation,
    ScaleEvent,
    behavior_from_spec,
    normalize_legacy,
    normalize_with_behavior,
    record_scale,
)
from reconciler.controllers.hpa_math import (
    ReplicaCalcError,
    group_pods,
    raw_resource_replicas,
    resource_replicas,
)
from reconciler.controllers.hpa_metrics import (
    MetricsError,
    PodMetric,
    format_milli,
    parse_duration,
    pod_resource_metrics,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def pod(
    name: str,
    cpu: str | None = "500m",
    memory: str | None = "100Mi",
    phase: str = "Running",
    ready: bool = True,
    started: datetime = NOW - timedelta(minutes=10),
    ready_since: datetime | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW)
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]},
        "status": {
            "phase": phase,
            "startTime": rfc3339(started),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": rfc3339(ready_since or started + timedelta(seconds=5)),
                }
            ],
        },
    }


def usage(name: str, cpu: str = "250m", memory: str = "50Mi", at: datetime = NOW) -> dict[str, Any]:
    return {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "timestamp": rfc3339(at),
        "window": "15s",
        "containers": [{"name": "c", "usage": {"cpu": cpu, "memory": memory}}],
    }


def names(n: int) -> list[str]:
    return [f"web-{i}" for i in range(n)]


# -- metrics parsing and formatting --------------------------------------------------------


def test_pod_metrics_sum_containers_in_milli_units() -> None:
    item = usage("a")
    item["containers"].append({"name": "side", "usage": {"cpu": "1500000n", "memory": "1Ki"}})
    metrics, stamp = pod_resource_metrics([item], "cpu")
    assert metrics["a"].value == 252  # 250m + 1.5m rounded up, as MilliValue() does
    assert metrics["a"].window == timedelta(seconds=15)
    assert stamp == NOW
    memory, _ = pod_resource_metrics([item], "memory")
    assert memory["a"].value == (50 * 2**20 + 1024) * 1000


def test_pod_metrics_errors_and_gaps() -> None:
    with pytest.raises(MetricsError, match="no metrics returned from resource metrics API"):
        pod_resource_metrics([], "cpu")
    no_memory = usage("a")
    del no_memory["containers"][0]["usage"]["memory"]
    assert pod_resource_metrics([no_memory], "memory")[0] == {}  # counts as missing
    with pytest.raises(
        MetricsError, match="container app not present in metrics for pod default/a"
    ):
        pod_resource_metrics([usage("a")], "cpu", container="app")
    assert pod_resource_metrics([usage("a")], "cpu", container="c")[0]["a"].value == 250


@pytest.mark.parametrize(
    ("milli", "text"),
    [
        (0, "0"),
        (6, "6m"),
        (1500, "1500m"),
        (2000, "2"),
        (12_000_000, "12k"),
        (20 * 2**20 * 1000, "20971520"),
    ],
)
def test_format_milli_is_canonical_decimal_si(milli: int, text: str) -> None:
    assert format_milli(milli) == text


@pytest.mark.parametrize(
    ("text", "seconds"), [("15s", 15), ("1m0s", 60), ("1m30s", 90), ("500ms", 0.5), ("bogus", 0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


# -- utilization ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "current", "expected", "utilization"),
    [
        ("500m", 3, 6, 100),  # 100% of request at a 50% target: double
        ("250m", 3, 3, 50),  # on target
        ("270m", 3, 3, 54),  # ratio 1.08: within the 0.1 tolerance, no change
        ("230m", 3, 3, 46),  # ratio 0.92: within tolerance
        ("280m", 3, 4, 56),  # ratio 1.12: ceil(1.12 * 3) = 4
        ("100m", 4, 2, 20),  # ratio 0.4: ceil(0.4 * 4) = 2
    ],
)
def test_utilization_proposals(used: str, current: int, expected: int, utilization: int) -> None:
    pods = [pod(n) for n in names(current)]
    items = [usage(n, cpu=used) for n in names(current)]
    proposal = resource_replicas(current, 50, "cpu", pods, items, NOW)
    assert (proposal.replicas, proposal.utilization) == (expected, utilization)
    assert proposal.timestamp == NOW


def test_utilization_reports_average_usage() -> None:
    pods = [pod("a"), pod("b")]
    proposal = resource_replicas(2, 50, "cpu", pods, [usage("a", "4m"), usage("b", "8m")], NOW)
    assert (proposal.utilization, proposal.average) == (1, 6)  # 12m of 1000m; 6m per pod


def test_worked_example_missing_pod_counts_zero_on_scale_up() -> None:
    pods = [pod(n) for n in names(4)]
    items = [usage("web-0", "400m"), usage("web-1", "400m"), usage("web-2", "500m")]
    proposal = resource_replicas(4, 50, "cpu", pods, items, NOW)
    assert (proposal.utilization, proposal.replicas) == (86, 6)


def test_missing_pods_count_full_request_on_scale_down() -> None:
    # Two pods idle at 10%, two without metrics: as 100% they hold the scale-down back.
    pods = [pod(n) for n in names(4)]
    items = [usage("web-0", "50m"), usage("web-1", "50m")]
    proposal = resource_replicas(4, 50, "cpu", pods, items, NOW)
    # (50 + 50 + 500 + 500) / 2000 = 55%: ratio 1.1 once filled in, the other way: hold.
    assert proposal.replicas == 4
    assert proposal.utilization == 10
    # Without the missing pods the same two would have scaled to one pod.
    assert resource_replicas(2, 50, "cpu", pods[:2], items, NOW).replicas == 1


def test_missing_pods_fall_back_to_a_target_above_100_percent() -> None:
    pods = [pod(n) for n in names(3)]
    items = [usage("web-0", "100m"), usage("web-1", "100m")]
    # Target 150%: missing pods count as 150% of 500m on a scale-down.
    # (100 + 100 + 750) / 1500 = 63% -> 0.42; ceil(0.42 * 3) = 2.
    assert resource_replicas(3, 150, "cpu", pods, items, NOW).replicas == 2


def test_a_flipped_direction_keeps_the_current_count() -> None:
    # Ratio 0.6 among the measured, but a missing pod at 100% flips it above 1: hold.
    pods = [pod("a"), pod("b")]
    assert resource_replicas(2, 60, "cpu", pods, [usage("a", "180m")], NOW).replicas == 2


def test_unready_pods_count_zero_on_scale_up() -> None:
    pods = [pod("a"), pod("b"), pod("c", ready=False)]
    items = [usage("a", "500m"), usage("b", "500m"), usage("c", "500m")]
    # Ready pods at 100% of a 50% target; the unready one counts as 0: 1000/1500 = 66%.
    # ratio 1.32: ceil(1.32 * 3) = 4 (not 6).
    assert resource_replicas(3, 50, "cpu", pods, items, NOW).replicas == 4


def test_unready_pods_are_left_out_on_scale_down() -> None:
    pods = [pod("a"), pod("b"), pod("c", ready=False)]
    items = [usage("a", "50m"), usage("b", "50m"), usage("c", "900m")]
    assert resource_replicas(3, 50, "cpu", pods, items, NOW).replicas == 1  # 10%: ceil(.2 * 2)


def test_pending_and_deleted_pods() -> None:
    pods = [pod("a"), pod("b", phase="Pending"), pod("c", deleting=True), pod("d", phase="Failed")]
    groups = group_pods(pods, {"a": PodMetric(1), "c": PodMetric(1)}, "cpu", NOW)
    assert groups.ready_count == 1
    assert groups.unready == {"b"} and groups.ignored == {"c", "d"} and not groups.missing


def test_starting_pods_sample_taken_before_readiness_window_is_unready() -> None:
    started = NOW - timedelta(minutes=1)
    fresh = pod("a", started=started, ready_since=NOW - timedelta(seconds=10))
    metric = PodMetric(1, timestamp=NOW, window=timedelta(seconds=15))
    assert group_pods([fresh], {"a": metric}, "cpu", NOW).unready == {"a"}
    settled = pod("a", started=started, ready_since=NOW - timedelta(seconds=30))
    assert group_pods([settled], {"a": metric}, "cpu", NOW).ready_count == 1
    # Memory does not care about readiness.
    assert group_pods([pod("a", ready=False)], {"a": metric}, "memory", NOW).ready_count == 1


def test_missing_request_is_an_error_naming_container_and_pod() -> None:
    pods = [pod("a"), pod("b", cpu=None)]
    with pytest.raises(
        ReplicaCalcError, match=r"^missing request for cpu in container c of Pod b$"
    ):
        resource_replicas(2, 50, "cpu", pods, [usage("a"), usage("b")], NOW)


@pytest.mark.parametrize(
    ("pods", "items", "message"),
    [
        (
            [pod("a")],
            [],
            "unable to get metrics for resource cpu: no metrics returned from resource metrics API",
        ),
        ([], [usage("a")], "no pods returned by selector while calculating replica count"),
        ([pod("a", phase="Pending")], [usage("a")], "did not receive metrics for targeted pods"),
    ],
)
def test_calculation_errors(
    pods: list[dict[str, Any]], items: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ReplicaCalcError, match=message):
        resource_replicas(1, 50, "cpu", pods, items, NOW)


# -- average value -------------------------------------------------------------------------


def test_average_value_proposals() -> None:
    pods = [pod(n) for n in names(2)]
    mib = 2**20 * 1000
    high = [usage(n, memory="200Mi") for n in names(2)]
    proposal = raw_resource_replicas(2, 100 * mib, "memory", pods, high, NOW)
    assert (proposal.replicas, proposal.average, proposal.utilization) == (4, 200 * mib, None)
    near = [usage(n, memory="105Mi") for n in names(2)]
    assert raw_resource_replicas(2, 100 * mib, "memory", pods, near, NOW).replicas == 2
    # A missing pod counts as exactly the target on a scale-down: (20 + 20 + 100) / 3 per
    # pod is 0.47 of the target, ceil(0.47 * 3) = 2; the two measured alone would give 1.
    low = [usage("web-0", memory="20Mi"), usage("web-1", memory="20Mi")]
    three = [*pods, pod("web-2")]
    assert raw_resource_replicas(3, 100 * mib, "memory", three, low, NOW).replicas == 2
    assert raw_resource_replicas(2, 100 * mib, "memory", pods, low, NOW).replicas == 1


# -- behavior: stabilization and rate ------------------------------------------------------

DEFAULTS = behavior_from_spec({})


def test_behavior_defaults_are_upstreams() -> None:
    assert DEFAULTS is not None
    up, down = DEFAULTS.scale_up, DEFAULTS.scale_down
    assert (up.stabilization_window_seconds, up.select_policy) == (0, "Max")
    assert {(p.type, p.value, p.period_seconds) for p in up.policies} == {
        ("Pods", 4, 15),
        ("Percent", 100, 15),
    }
    assert (down.stabilization_window_seconds, down.select_policy) == (300, "Max")
    assert [(p.type, p.value, p.period_seconds) for p in down.policies] == [("Percent", 100, 15)]
    assert behavior_from_spec(None) is None
    custom = behavior_from_spec({"scaleDown": {"stabilizationWindowSeconds": 60}})
    assert custom is not None and custom.scale_down.stabilization_window_seconds == 60
    assert custom.scale_down.policies == DEFAULTS.scale_down.policies


def test_scale_up_rate_worked_example() -> None:
    assert DEFAULTS is not None
    first = normalize_with_behavior(History(), DEFAULTS, 2, 12, 1, 20, NOW)
    assert first.replicas == 6  # max(2 + 4 pods, 2 + 100%)
    assert (first.limited, first.limited_reason) == (True, "ScaleUpLimit")
    history = record_scale(first.history, DEFAULTS, 2, 6, NOW)
    again = normalize_with_behavior(history, DEFAULTS, 6, 12, 1, 20, NOW + timedelta(seconds=5))
    assert again.replicas == 6  # the 4 added pods still count within the 15 s period
    later = normalize_with_behavior(history, DEFAULTS, 6, 12, 1, 20, NOW + timedelta(seconds=15))
    assert (later.replicas, later.limited_reason) == (12, "DesiredWithinRange")


def test_min_and_max_bound_the_recommendation() -> None:
    assert DEFAULTS is not None
    high = normalize_with_behavior(History(), DEFAULTS, 8, 12, 1, 10, NOW)
    assert (high.replicas, high.limited, high.limited_reason) == (10, True, "TooManyReplicas")
    low = normalize_with_behavior(History(), DEFAULTS, 3, 1, 2, 10, NOW)
    assert (low.replicas, low.limited_reason) == (2, "TooFewReplicas")
    assert low.limited_message == "the desired replica count is less than the minimum replica count"


def test_scale_down_waits_for_the_stabilization_window() -> None:
    assert DEFAULTS is not None
    history = History((Recommendation(5, NOW),))
    held = normalize_with_behavior(history, DEFAULTS, 5, 2, 1, 10, NOW + timedelta(seconds=60))
    assert held.replicas == 5
    assert held.able_reason == "ScaleDownStabilized"
    after = normalize_with_behavior(
        held.history, DEFAULTS, 5, 2, 1, 10, NOW + timedelta(seconds=301)
    )
    # The 60 s recommendation (2) is the highest left in the window.
    assert (after.replicas, after.able_reason) == (2, "ReadyForNewScale")


def test_scale_down_percent_and_pods_policies() -> None:
    behavior = behavior_from_spec(
        {
            "scaleDown": {
                "stabilizationWindowSeconds": 0,
                "policies": [
                    {"type": "Percent", "value": 50, "periodSeconds": 60},
                    {"type": "Pods", "value": 1, "periodSeconds": 60},
                ],
            }
        }
    )
    assert behavior is not None
    most = normalize_with_behavior(History(), behavior, 10, 1, 1, 10, NOW)
    assert (most.replicas, most.limited_reason) == (5, "ScaleDownLimit")  # Max: the larger move
    least = behavior_from_spec(
        {
            "scaleDown": {
                **{"selectPolicy": "Min", "stabilizationWindowSeconds": 0},
                "policies": [
                    {"type": "Percent", "value": 50, "periodSeconds": 60},
                    {"type": "Pods", "value": 1, "periodSeconds": 60},
                ],
            }
        }
    )
    assert least is not None
    assert normalize_with_behavior(History(), least, 10, 1, 1, 10, NOW).replicas == 9
    # Moves already made in the period count against it: 10 -> 5 half a minute ago.
    history = record_scale(History(), behavior, 10, 5, NOW - timedelta(seconds=30))
    assert normalize_with_behavior(history, behavior, 5, 1, 1, 10, NOW).replicas == 5


def test_disabled_select_policy_never_scales_that_way() -> None:
    behavior = behavior_from_spec({"scaleUp": {"selectPolicy": "Disabled"}})
    assert behavior is not None
    held = normalize_with_behavior(History(), behavior, 3, 9, 1, 10, NOW)
    assert (held.replicas, held.limited_reason) == (3, "ScaleUpLimit")


def test_scale_up_stabilization_takes_the_lowest_recent() -> None:
    behavior = behavior_from_spec({"scaleUp": {"stabilizationWindowSeconds": 60}})
    assert behavior is not None
    history = History((Recommendation(4, NOW - timedelta(seconds=30)),))
    got = normalize_with_behavior(history, behavior, 3, 8, 1, 10, NOW)
    assert (got.replicas, got.able_reason) == (4, "ScaleUpStabilized")


def test_legacy_path_without_behavior() -> None:
    up = normalize_legacy(History(), 1, 10, 1, 20, NOW)
    assert (up.replicas, up.limited_reason) == (4, "ScaleUpLimit")  # max(2 x 1, 4)
    assert normalize_legacy(History(), 5, 30, 1, 20, NOW).replicas == 10  # 2 x 5
    history = History((Recommendation(6, NOW - timedelta(seconds=100)),))
    held = normalize_legacy(history, 6, 2, 1, 20, NOW)
    assert (held.replicas, held.able_reason) == (6, "ScaleDownStabilized")
    assert normalize_legacy(held.history, 6, 2, 1, 20, NOW + timedelta(seconds=301)).replicas == 2


def test_recommendations_reuse_an_expired_slot() -> None:
    assert DEFAULTS is not None
    history = History((Recommendation(3, NOW - timedelta(seconds=400)),))
    got = normalize_with_behavior(history, DEFAULTS, 3, 3, 1, 10, NOW)
    assert got.history.recommendations == (Recommendation(3, NOW),)


def test_record_scale_only_with_a_behavior() -> None:
    assert record_scale(History(), None, 2, 4, NOW) == History()
    assert DEFAULTS is not None
    history = record_scale(History(), DEFAULTS, 2, 4, NOW)
    assert history.scale_up == (ScaleEvent(2, NOW),)
