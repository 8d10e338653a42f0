"""Failure rules with the real kubectl on Docker: a Job's podFailurePolicy (exit code 42
fails the Job at once, with the controller's reason and message) and a pod's
activeDeadlineSeconds (the node stops it and fails it, reason DeadlineExceeded)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ReconServer, new_namespace
from tests.e2e.support import busybox_pod

pytestmark = pytest.mark.e2e


def test_an_exit_code_rule_fails_the_job_at_once(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "pfp")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "import", "namespace": ns},
        "spec": {
            "backoffLimit": 6,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
                    }
                ]
            },
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": "recon.local/busybox:latest",
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", "echo bad input; exit 42"],
                        }
                    ],
                }
            },
        },
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(job))
    kubectl.run(
        "-n", ns, "wait", "--for=condition=failed", "job/import", "--timeout=60s", timeout=70
    )
    status = kubectl.json("-n", ns, "get", "job", "import")["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"].startswith("Container main for pod ")
    assert failed["message"].endswith("failed with exit code 42 matching FailJob rule at index 0")
    pods = kubectl.json("-n", ns, "get", "pods", "-l", "job-name=import")["items"]
    assert len(pods) == 1  # not retried


def test_a_pod_past_its_active_deadline_fails(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "deadline")
    pod = busybox_pod(ns, "bounded", ["sleep", "3600"], activeDeadlineSeconds=3)
    kubectl.run("apply", "-f", "-", input=json.dumps(pod))
    kubectl.run(
        "-n",
        ns,
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "pod/bounded",
        "--timeout=60s",
        timeout=70,
    )
    status = kubectl.json("-n", ns, "get", "pod", "bounded")["status"]
    assert status["reason"] == "DeadlineExceeded"
    assert status["message"] == "Pod was active on the node longer than the specified deadline"
    assert "terminated" in status["containerStatuses"][0]["state"]
