"""The API server's Prometheus metrics (pure): upstream's verbs, labels and text format."""

from __future__ import annotations

from reconciler.apiserver.request_info import resolve
from reconciler.apiserver.request_metrics import RequestMetrics, metric_verb, stored_counts


def test_verbs_as_upstream_names_them() -> None:
    cases = {
        ("GET", "/api/v1/namespaces/a/pods", ""): "LIST",
        ("GET", "/api/v1/namespaces/a/pods/p", ""): "GET",
        ("GET", "/api/v1/pods?watch=1", ""): "WATCH",
        ("POST", "/api/v1/namespaces/a/pods", ""): "POST",
        ("PUT", "/api/v1/namespaces/a/pods/p", ""): "PUT",
        ("PATCH", "/apis/apps/v1/namespaces/a/deployments/d", "application/apply-patch+yaml"): (
            "APPLY"
        ),
        ("PATCH", "/apis/apps/v1/namespaces/a/deployments/d", "application/merge-patch+json"): (
            "PATCH"
        ),
        ("DELETE", "/api/v1/namespaces/a/pods", ""): "DELETECOLLECTION",
        ("POST", "/api/v1/namespaces/a/pods/p/exec", ""): "CONNECT",
    }
    for (method, url, content_type), verb in cases.items():
        path, _, query = url.partition("?")
        attributes = resolve(method, path, dict(q.split("=") for q in query.split("&") if q))
        assert metric_verb(method, attributes, content_type) == verb, url


def test_counters_histograms_and_gauges_in_the_text_format() -> None:
    metrics = RequestMetrics(1_700_000_000.5)
    listed = resolve("GET", "/api/v1/namespaces/a/pods", {})
    metrics.end(listed, "LIST", 200, 0.03, False, metrics.begin(listed, "LIST"))
    watch = resolve("GET", "/api/v1/pods", {"watch": "1"})
    opened = metrics.begin(watch, "WATCH")
    text = metrics.render(stored_counts({"core/pods": 3, "apps/deployments": 1}))
    lines = text.splitlines()
    assert (
        'apiserver_request_total{code="200",component="apiserver",dry_run="",group="",'
        'resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 1'
    ) in lines
    bucket = (
        'apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",'
        'resource="pods",scope="namespace",subresource="",verb="LIST",version="v1",le="0.05"} 1'
    )
    assert bucket in lines
    assert any(
        line.startswith("apiserver_longrunning_requests{") and line.endswith(" 1") for line in lines
    )
    assert 'apiserver_storage_objects{resource="deployments.apps"} 1' in lines
    assert 'apiserver_storage_objects{resource="pods"} 3' in lines
    assert "process_start_time_seconds 1700000000.500" in lines
    metrics.end(watch, "WATCH", 200, 30.0, False, opened)
    after = metrics.render([]).splitlines()
    assert any(
        line.startswith("apiserver_longrunning_requests{") and line.endswith(" 0") for line in after
    )
    assert not any('verb="WATCH"' in line for line in after if "duration" in line)
