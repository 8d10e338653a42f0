"""Termination messages with the real kubectl on Docker: what a container writes to
/dev/termination-log (or its log, with FallbackToLogsOnError) shows in its terminated state
and in `kubectl describe pod`."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ReconServer, new_namespace
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e


def _container(name: str, script: str, **extra: str) -> dict[str, object]:
    return {
        "name": name,
        "image": "recon.local/busybox:latest",
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        **extra,
    }


def test_the_message_a_container_leaves(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "term")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "report", "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 1000},  # the file is writable by anyone
            "containers": [
                _container("export", "echo '42 rows exported' > /dev/termination-log"),
                _container(
                    "check",
                    "echo 'checking' >&2; echo 'no such table: rows' >&2; exit 3",
                    terminationMessagePolicy="FallbackToLogsOnError",
                ),
            ],
        },
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(pod))

    def messages() -> dict[str, str]:
        statuses = (
            kubectl.json("-n", ns, "get", "pod", "report")["status"].get("containerStatuses") or []
        )
        done = {
            s["name"]: s["state"]["terminated"].get("message", "")
            for s in statuses
            if "terminated" in s["state"]
        }
        return done if len(done) == 2 else {}

    found = wait_until(messages, what="both containers terminated")
    assert found == {"export": "42 rows exported\n", "check": "checking\nno such table: rows\n"}
    described = kubectl.run("-n", ns, "describe", "pod", "report").stdout
    assert "42 rows exported" in described
