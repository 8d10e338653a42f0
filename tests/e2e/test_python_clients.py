"""The official `kubernetes` Python client and a kopf operator work against recon serve."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def api(server: ReconServer) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(server.kubeconfig))


def test_official_client_lists_and_watches(api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    namespaces = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system"} <= namespaces
    listed = core.list_namespaced_config_map("default")
    seen: list[tuple[str, str]] = []

    def watch() -> None:
        w = kubernetes.watch.Watch()
        for event in w.stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=10,
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(0.5)
    body = kubernetes.client.V1ConfigMap(
        metadata=kubernetes.client.V1ObjectMeta(name="pyc"), data={"a": "1"}
    )
    core.create_namespaced_config_map("default", body)
    core.patch_namespaced_config_map("pyc", "default", {"data": {"a": "2"}})
    core.delete_namespaced_config_map("pyc", "default")
    thread.join(15)
    assert seen == [("ADDED", "pyc"), ("MODIFIED", "pyc"), ("DELETED", "pyc")]
    apps = kubernetes.client.AppsV1Api(api)
    assert apps.list_deployment_for_all_namespaces().items == []


def test_kopf_operator_handles_create_update_delete(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    kubectl.run("apply", "-f", str(HERE / "manifests" / "00-crd.yaml"))
    log = tmp_path / "kopf-events.log"
    env = dict(os.environ, KUBECONFIG=str(server.kubeconfig), KOPF_TEST_LOG=str(log))
    out = (tmp_path / "kopf.out").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kopf",
            "run",
            "--standalone",
            "--namespace",
            "default",
            str(HERE / "kopf_operator.py"),
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    custom = kubernetes.client.CustomObjectsApi(
        kubernetes.config.new_client_from_config(config_file=str(server.kubeconfig))
    )

    def phase() -> str | None:
        obj = custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1")
        return (obj.get("status") or {}).get("phase")

    try:
        custom.create_namespaced_custom_object(
            "example.com",
            "v1",
            "default",
            "widgets",
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w1"},
                "spec": {"size": 3},
            },
        )
        wait_for(lambda: phase() == "created-3", what="kopf to handle the creation")
        custom.patch_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "w1", {"spec": {"size": 5}}
        )
        wait_for(lambda: phase() == "updated-5", what="kopf to handle the update")
        custom.delete_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1")
        wait_for(
            lambda: log.exists() and "deleted w1" in log.read_text(), what="kopf's delete handler"
        )

        def gone() -> bool:
            try:
                custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1")
            except kubernetes.client.ApiException as e:
                return e.status == 404
            return False

        wait_for(gone, what="kopf to release its finalizer")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()
    output = (tmp_path / "kopf.out").read_text()
    assert "Traceback" not in output, output[-4000:]
