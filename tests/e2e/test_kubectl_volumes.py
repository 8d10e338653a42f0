"""PersistentVolumes with the real kubectl on Docker: a hostPath volume written by hand and a
claim binding to it (the data land in the host directory), and the default StorageClass
provisioning for a claim that names none."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e


def _writer(namespace: str, name: str, claim: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: recon.local/busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "echo hello > /data/hello; sleep 3600"]
      volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}]
"""


def _phase(kubectl: Kubectl, *what: str) -> str:
    return str(kubectl.json("get", *what).get("status", {}).get("phase"))


def test_host_path_volume_and_default_class(docker_server: ReconServer, tmp_path: Path) -> None:
    kubectl = Kubectl(docker_server)
    ns = f"pv-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(ns)
    kubectl.run("create", "namespace", ns)
    data = tmp_path / "pv-data"
    pv = f"{ns}-pv"
    kubectl.run(
        "apply",
        "-f",
        "-",
        input=f"""apiVersion: v1
kind: PersistentVolume
metadata: {{name: {pv}}}
spec:
  storageClassName: manual
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  hostPath: {{path: {data}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: mine, namespace: {ns}}}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 500Mi}}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: scratch, namespace: {ns}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 100Mi}}}}
""",
    )
    try:
        wait_until(lambda: _phase(kubectl, "pvc", "mine", "-n", ns) == "Bound", what="bound")
        row = kubectl.run("get", "pv", pv).stdout.splitlines()[1].split()
        assert row[:6] == [pv, "1Gi", "RWO", "Retain", "Bound", f"{ns}/mine"]
        classes = kubectl.run("get", "storageclass").stdout
        assert "standard (default)   recon.dev/engine-volume   Delete" in classes
        # the default class waits for the first consumer
        scratch: Any = kubectl.json("get", "pvc", "scratch", "-n", ns)
        assert scratch["spec"]["storageClassName"] == "standard"
        assert scratch["status"]["phase"] == "Pending"

        kubectl.run("apply", "-f", "-", input=_writer(ns, "writer", "mine"))
        kubectl.run("apply", "-f", "-", input=_writer(ns, "scratcher", "scratch"))
        wait_until(lambda: (data / "hello").exists(), what="the file on the host")
        assert (data / "hello").read_text() == "hello\n"
        wait_until(lambda: _phase(kubectl, "pvc", "scratch", "-n", ns) == "Bound", what="scratch")
        wait_until(
            lambda: _phase(kubectl, "pod", "scratcher", "-n", ns) == "Running", what="scratcher"
        )

        kubectl.run("delete", "pod", "writer", "-n", ns)
        kubectl.run("delete", "pvc", "mine", "-n", ns)
        wait_until(lambda: _phase(kubectl, "pv", pv) == "Released", what="Released")
        assert (data / "hello").exists()  # Retain: the data stay
    finally:
        kubectl.run("delete", "pv", pv, "--wait=false", check=False)
