"""The API server's own metrics and health checks with the real kubectl: `kubectl get --raw
/metrics` shows the requests kubectl made and the objects stored, in Prometheus' text
format; `/readyz?verbose` lists its checks."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e


def test_get_raw_metrics(server: ReconServer, kubectl: Kubectl) -> None:
    kubectl.run("get", "namespaces")
    kubectl.run("get", "namespace", "default")
    text = kubectl.run("get", "--raw", "/metrics").stdout
    lines = text.splitlines()
    listed = [
        line
        for line in lines
        if line.startswith("apiserver_request_total{")
        and 'resource="namespaces"' in line
        and 'verb="LIST"' in line
        and 'code="200"' in line
    ]
    assert listed and int(listed[0].rsplit(" ", 1)[1]) >= 1
    assert any('verb="GET"' in line and 'scope="resource"' in line for line in lines)
    assert any(
        line.startswith('apiserver_storage_objects{resource="namespaces"}') for line in lines
    )
    assert "# TYPE apiserver_request_duration_seconds histogram" in lines


def test_health_endpoints_verbose_and_by_check(server: ReconServer, kubectl: Kubectl) -> None:
    verbose = kubectl.run("get", "--raw", "/readyz?verbose").stdout.splitlines()
    assert verbose[0] == "[+]ping ok" and "[+]etcd ok" in verbose
    assert verbose[-1] == "readyz check passed"
    assert kubectl.run("get", "--raw", "/livez/ping").stdout == "ok"
    assert kubectl.run("get", "--raw", "/healthz").stdout == "ok"
    missing = kubectl.run("get", "--raw", "/readyz/no-such-check", check=False)
    assert missing.returncode != 0
