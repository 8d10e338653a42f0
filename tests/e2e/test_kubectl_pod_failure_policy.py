"""A Job's podFailurePolicy with the real kubectl on Docker: exit code 42 fails the Job at
once (no retries), with the controller's reason and message."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ReconServer, new_namespace

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
