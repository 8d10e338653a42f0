"""An Indexed Job with the real kubectl on Docker: each pod runs one index, knows it from
`$JOB_COMPLETION_INDEX` and its host name, and the Job lists the completed indexes."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ReconServer, new_namespace

pytestmark = pytest.mark.e2e


def test_each_pod_runs_its_own_index(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "indexed")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "render", "namespace": ns},
        "spec": {
            "completions": 3,
            "parallelism": 3,
            "completionMode": "Indexed",
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "c",
                            "image": "recon.local/busybox:latest",
                            "imagePullPolicy": "IfNotPresent",
                            "command": [
                                "sh",
                                "-c",
                                'echo "part $JOB_COMPLETION_INDEX on $(hostname)"',
                            ],
                        }
                    ],
                }
            },
        },
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(job))
    kubectl.run(
        "-n", ns, "wait", "--for=condition=complete", "job/render", "--timeout=90s", timeout=100
    )
    status = kubectl.json("-n", ns, "get", "job", "render")["status"]
    assert status["completedIndexes"] == "0-2" and status["succeeded"] == 3
    pods = kubectl.json("-n", ns, "get", "pods", "-l", "job-name=render")["items"]
    lines = sorted(
        kubectl.run("-n", ns, "logs", p["metadata"]["name"]).stdout.strip() for p in pods
    )
    assert lines == [f"part {i} on render-{i}" for i in range(3)]
