"""ResourceQuota and LimitRange with the real kubectl: `kubectl create quota`, `describe
quota`, a Deployment held to its namespace's quota (FailedCreate), LimitRange defaults."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e


def test_quota_and_limit_range(server: ReconServer, kubectl: Kubectl) -> None:
    ns = f"quota-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", ns)
    try:
        kubectl.run(
            "create",
            "-n",
            ns,
            "-f",
            "-",
            input=f"""apiVersion: v1
kind: LimitRange
metadata: {{name: defaults, namespace: {ns}}}
spec:
  limits:
    - type: Container
      default: {{cpu: 200m, memory: 64Mi}}
      max: {{cpu: "1"}}
""",
        )
        kubectl.run(
            "create", "quota", "team", "-n", ns, "--hard=pods=2,requests.cpu=1,limits.memory=1Gi"
        )
        kubectl.run("create", "deployment", "web", "-n", ns, "--image=busybox", "--replicas=3")

        def pods() -> list[Any]:
            return list(kubectl.json("get", "pods", "-n", ns)["items"])

        wait_until(lambda: len(pods()) == 2, what="two pods")
        (first, *_) = pods()
        resources = first["spec"]["containers"][0]["resources"]
        assert resources == {
            "limits": {"cpu": "200m", "memory": "64Mi"},
            "requests": {"cpu": "200m", "memory": "64Mi"},
        }

        def failed_create() -> str:
            events = kubectl.json("get", "events", "-n", ns)["items"]
            return next((e["message"] for e in events if e.get("reason") == "FailedCreate"), "")

        message = wait_until(failed_create, what="FailedCreate")
        assert "exceeded quota: team, requested: pods=1, used: pods=2, limited: pods=2" in message

        def described() -> dict[str, list[str]]:
            out = kubectl.run("describe", "quota", "team", "-n", ns).stdout
            rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
            return rows if rows.get("requests.cpu") == ["400m", "1"] else {}

        rows = wait_until(described, what="describe quota")
        assert rows["pods"] == ["2", "2"]
        assert rows["limits.memory"] == ["128Mi", "1Gi"]
        table = kubectl.run("get", "quota", "-n", ns).stdout.splitlines()
        assert table[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
        assert "pods: 2/2, requests.cpu: 400m/1" in table[1]
        assert table[1].rstrip().endswith("limits.memory: 128Mi/1Gi")
        assert kubectl.run("get", "limitrange", "-n", ns).stdout.split()[:3] == [
            "NAME",
            "CREATED",
            "AT",
        ]
        refused = kubectl.run(
            "run",
            "big",
            "-n",
            ns,
            "--image=busybox",
            "--overrides",
            '{"spec":{"containers":[{"name":"big","image":"busybox",'
            '"resources":{"limits":{"cpu":"2"}}}]}}',
            check=False,
        )
        assert refused.returncode != 0
        assert "maximum cpu usage per Container is 1, but limit is 2" in refused.stderr
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
