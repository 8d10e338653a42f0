"""Inter-pod anti-affinity with the real kubectl on Docker: a Deployment whose replicas must
not share a node runs one pod on the one node; the others stay Pending with the scheduler's
reason, and a pod that wants to be next to it is placed beside it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import ReconServer, new_namespace
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

HOST = "kubernetes.io/hostname"


def _term(app: str) -> dict[str, Any]:
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": HOST}
        ]
    }


def _spec(affinity: dict[str, Any]) -> dict[str, Any]:
    return {
        "terminationGracePeriodSeconds": 1,
        "affinity": affinity,
        "containers": [
            {
                "name": "c",
                "image": "recon.local/busybox:latest",
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
            }
        ],
    }


def test_replicas_kept_apart_and_a_companion_placed_beside(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "affinity")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": _spec({"podAntiAffinity": _term("web")}),
            },
        },
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(deployment))

    def pods() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = kubectl.json("-n", ns, "get", "pods", "-l", "app=web")[
            "items"
        ]
        return found

    def one_running_two_waiting() -> list[dict[str, Any]]:
        found = pods()
        running = [p for p in found if p.get("status", {}).get("phase") == "Running"]
        waiting = [
            c.get("message", "")
            for p in found
            for c in p.get("status", {}).get("conditions") or []
            if c.get("reason") == "Unschedulable"
        ]
        return found if len(found) == 3 and len(running) == 1 and len(waiting) == 2 else []

    found = wait_until(one_running_two_waiting, what="one web pod running, two waiting")
    message = next(
        c["message"]
        for p in found
        for c in p["status"].get("conditions") or []
        if c.get("reason") == "Unschedulable"
    )
    assert message.startswith(
        "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules."
    )
    rollout = kubectl.run("-n", ns, "get", "deployment", "web").stdout
    assert " 1/3 " in rollout

    cache = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "cache", "namespace": ns, "labels": {"app": "cache"}},
        "spec": _spec({"podAffinity": _term("web")}),
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(cache))
    kubectl.run("-n", ns, "wait", "--for=condition=Ready", "pod/cache", "--timeout=60s", timeout=70)
