"""A pod's ServiceAccount token on `recon serve --runtime docker`: every pod finds `token`,
`ca.crt` and `namespace` in /var/run/secrets/kubernetes.io/serviceaccount, and the token
authenticates as the pod's ServiceAccount (`kubectl --token ... auth whoami`)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def test_a_pod_gets_a_working_token(docker_server: ReconServer) -> None:
    namespace = f"sa-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    pod = f"""apiVersion: v1
kind: Pod
metadata: {{name: reader, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: main
      image: recon.local/busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
"""
    kubectl.run("apply", "-f", "-", input=pod)
    kubectl.run(
        "-n", namespace, "wait", "--for=condition=Ready", "pod/reader", "--timeout=60s"
    )  # fmt: skip
    made = kubectl.json("-n", namespace, "get", "pod", "reader")
    assert made["spec"]["serviceAccountName"] == "default"

    def read(name: str) -> str:
        return kubectl.run(
            "-n", namespace, "exec", "reader", "--", "cat", f"{SA_DIR}/{name}"
        ).stdout

    assert read("namespace") == namespace
    assert read("ca.crt") == (docker_server.data_dir / "pki" / "ca.crt").read_text()
    token = read("token")
    whoami = wait_until(
        lambda: kubectl.run("--token", token, "auth", "whoami", "-o", "json", check=False).stdout,
        10,
        "the token to authenticate",
    )
    user = json.loads(whoami)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:default"
    # Bound to the pod: deleting the pod ends the token.
    kubectl.run("-n", namespace, "delete", "pod", "reader", "--wait=true")
    gone = kubectl.run("--token", token, "auth", "whoami", check=False)
    assert gone.returncode != 0 and "Unauthorized" in gone.stderr
