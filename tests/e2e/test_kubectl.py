"""The system's real kubectl against a real `recon serve`: the issue's acceptance walk-through."""

from __future__ import annotations

import queue
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Kubectl, ReconServer, require_kubectl

pytestmark = pytest.mark.e2e

MANIFESTS = Path(__file__).parent / "manifests"


def changed_app(tmp_path: Path) -> Path:
    """10-app.yaml with the Deployment edited the way a user edits git."""
    docs = list(yaml.safe_load_all((MANIFESTS / "10-app.yaml").read_text()))
    for doc in docs:
        if doc["kind"] == "Deployment":
            doc["metadata"]["labels"]["tier"] = "frontend"
            spec = doc["spec"]["template"]["spec"]
            web = spec["containers"][0]
            web["image"] = "busybox:1.37"
            web["env"] = [{"name": "MODE", "value": "green"}]  # LEVEL removed
            web["ports"] = [{"containerPort": 8080}]  # 9090 removed
            spec["containers"] = [web]  # sidecar removed
    out = tmp_path / "app-changed.yaml"
    out.write_text(yaml.safe_dump_all(docs))
    return out


@pytest.fixture(scope="module")
def applied(server: ReconServer) -> ReconServer:
    k = Kubectl(server)
    out = k.run("apply", "-f", str(MANIFESTS / "00-crd.yaml")).stdout
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created" in out
    out = k.run("apply", "-f", str(MANIFESTS / "10-app.yaml")).stdout
    for line in [
        "namespace/shop created",
        "configmap/web-config created",
        "secret/web-secret created",
        "deployment.apps/web created",
        "service/web created",
        "cronjob.batch/report created",
        "widget.example.com/gizmo created",
    ]:
        assert line in out, out
    return server


def header(output: str) -> list[str]:
    return output.splitlines()[0].split()


def test_get_prints_the_familiar_tables(applied: ReconServer, kubectl: Kubectl) -> None:
    assert header(kubectl.run("get", "deployments", "-n", "shop").stdout) == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
    ]
    assert header(kubectl.run("get", "configmaps", "-n", "shop").stdout) == ["NAME", "DATA", "AGE"]
    secrets = kubectl.run("get", "secrets", "-n", "shop").stdout
    assert header(secrets) == ["NAME", "TYPE", "DATA", "AGE"]
    assert "web-secret" in secrets and "Opaque" in secrets
    services = kubectl.run("get", "svc", "-n", "shop").stdout
    assert header(services)[:3] == ["NAME", "TYPE", "CLUSTER-IP"]
    assert "80/TCP" in services
    cron = kubectl.run("get", "cronjobs", "-n", "shop").stdout
    assert header(cron)[:2] == ["NAME", "SCHEDULE"] and "*/5 * * * *" in cron
    namespaces = kubectl.run("get", "ns").stdout
    assert header(namespaces) == ["NAME", "STATUS", "AGE"]
    assert "shop" in namespaces and "Active" in namespaces
    widgets = kubectl.run("get", "wd", "-n", "shop").stdout
    # With additionalPrinterColumns the server prints exactly those (no automatic AGE).
    assert header(widgets) == ["NAME", "SIZE"] and "gizmo" in widgets


def test_componentstatuses_report_the_control_planes_parts(kubectl: Kubectl) -> None:
    """`kubectl get cs`, deprecated upstream but still in tutorials: each part, asked."""
    got = kubectl.run("get", "componentstatuses")
    assert header(got.stdout) == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    rows = {line.split()[0]: line.split()[1] for line in got.stdout.splitlines()[1:]}
    assert rows == {"controller-manager": "Healthy", "etcd-0": "Healthy", "scheduler": "Healthy"}
    assert "ComponentStatus is deprecated" in got.stderr
    one = kubectl.json("get", "cs", "scheduler")
    assert one["conditions"] == [{"type": "Healthy", "status": "True", "message": "ok"}]
    refused = kubectl.run("delete", "cs", "scheduler", check=False)
    assert refused.returncode != 0 and "not supported" in refused.stderr


def test_get_yaml_round_trips_every_object(applied: ReconServer, kubectl: Kubectl) -> None:
    for kind, name, check in [
        ("configmap", "web-config", lambda o: o["data"]["greeting"] == "hello"),
        ("secret", "web-secret", lambda o: o["data"]["password"] == "czNjcmV0"),
        ("deployment", "web", lambda o: o["spec"]["replicas"] == 2),
        ("service", "web", lambda o: o["spec"]["ports"][0]["targetPort"] == 8080),
        ("cronjob", "report", lambda o: o["spec"]["schedule"] == "*/5 * * * *"),
        ("widget", "gizmo", lambda o: o["spec"] == {"size": 3, "color": "red"}),
    ]:
        obj = yaml.safe_load(kubectl.run("get", kind, name, "-n", "shop", "-o", "yaml").stdout)
        assert obj["metadata"]["name"] == name
        assert obj["metadata"]["uid"] and obj["metadata"]["resourceVersion"]
        assert check(obj), obj


def test_reapply_follows_strategic_merge_rules(
    applied: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    # Another client adds an env var kubectl never declared: the three-way apply must keep it.
    kubectl.run(
        "patch",
        "deployment",
        "web",
        "-n",
        "shop",
        "--type=strategic",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"web","env":'
        '[{"name":"INJECTED","value":"x"}]}]}}}}',
    )
    changed = changed_app(tmp_path)
    diff = kubectl.run("diff", "-f", str(changed), check=False)
    assert diff.returncode == 1, diff.stderr
    assert "busybox:1.37" in diff.stdout
    out = kubectl.run("apply", "-f", str(changed)).stdout
    assert "deployment.apps/web configured" in out and "configmap/web-config unchanged" in out
    live = kubectl.json("get", "deployment", "web", "-n", "shop")
    assert live["metadata"]["labels"] == {"app": "web", "tier": "frontend"}
    containers = live["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]  # sidecar deleted by name
    web = containers[0]
    assert web["image"] == "busybox:1.37"
    assert [p["containerPort"] for p in web["ports"]] == [8080]  # 9090 deleted
    env = {e["name"]: e["value"] for e in web["env"]}
    assert env == {"MODE": "green", "INJECTED": "x"}  # LEVEL deleted, INJECTED kept
    assert live["metadata"]["generation"] >= 3
    assert kubectl.run("diff", "-f", str(changed), check=False).returncode == 0


def test_get_watch_streams_a_change_made_by_another_client(
    applied: ReconServer, kubectl: Kubectl
) -> None:
    cmd = [
        require_kubectl(),
        "--kubeconfig",
        str(applied.kubeconfig),
        "get",
        "configmap",
        "web-config",
        "-n",
        "shop",
        "--watch",
        "-o",
        "custom-columns=NAME:.metadata.name,MODE:.data.mode",
        "--no-headers",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True).start()
    try:
        first = lines.get(timeout=20)
        assert first.split()[0] == "web-config"
        status, _ = applied.request(
            "PATCH",
            "/api/v1/namespaces/shop/configmaps/web-config",
            {"data": {"mode": "watched"}},
            content_type="application/merge-patch+json",
        )
        assert status == 200
        seen = lines.get(timeout=20)
        assert seen.split() == ["web-config", "watched"]
    finally:
        proc.kill()
        proc.wait()


def test_scale_label_annotate_and_patch_types(applied: ReconServer, kubectl: Kubectl) -> None:
    assert "scaled" in kubectl.run("scale", "deployment/web", "-n", "shop", "--replicas=5").stdout
    assert kubectl.json("get", "deployment", "web", "-n", "shop")["spec"]["replicas"] == 5
    kubectl.run("label", "configmap", "web-config", "-n", "shop", "team=payments")
    kubectl.run("annotate", "configmap", "web-config", "-n", "shop", "owner=alice")
    cm = kubectl.json("get", "configmap", "web-config", "-n", "shop")
    assert cm["metadata"]["labels"]["team"] == "payments"
    assert cm["metadata"]["annotations"]["owner"] == "alice"
    kubectl.run("label", "configmap", "web-config", "-n", "shop", "team-")
    assert "team" not in (
        kubectl.json("get", "cm", "web-config", "-n", "shop")["metadata"].get("labels") or {}
    )
    kubectl.run(
        "patch",
        "configmap",
        "web-config",
        "-n",
        "shop",
        "--type=merge",
        "-p",
        '{"data":{"extra":"1","greeting":null}}',
    )
    kubectl.run(
        "patch",
        "configmap",
        "web-config",
        "-n",
        "shop",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/data/extra","value":"2"}]',
    )
    data = kubectl.json("get", "cm", "web-config", "-n", "shop")["data"]
    assert data["extra"] == "2" and "greeting" not in data
    failed = kubectl.run(
        "patch",
        "configmap",
        "web-config",
        "-n",
        "shop",
        "--type=json",
        "-p",
        '[{"op":"test","path":"/data/extra","value":"nope"}]',
        check=False,
    )
    assert failed.returncode != 0
    kubectl.run(
        "patch", "widget", "gizmo", "-n", "shop", "--type=merge", "-p", '{"spec":{"size":7}}'
    )
    assert kubectl.json("get", "widget", "gizmo", "-n", "shop")["spec"]["size"] == 7


def test_delete_objects_and_a_whole_namespace(applied: ReconServer, kubectl: Kubectl) -> None:
    out = kubectl.run("delete", "widget", "gizmo", "-n", "shop").stdout
    assert 'widget.example.com "gizmo" deleted' in out
    kubectl.run("delete", "deployment", "web", "-n", "shop")
    missing = kubectl.run("get", "deployment", "web", "-n", "shop", check=False)
    assert missing.returncode == 1 and "NotFound" in missing.stderr
    kubectl.run("delete", "namespace", "shop", timeout=60)
    assert kubectl.run("get", "namespace", "shop", check=False).returncode == 1
    assert kubectl.run("get", "configmaps", "-n", "shop", "-o", "name").stdout.strip() == ""
