"""kubectl's workload commands against the controllers running inside recon serve.

No node agent runs here yet, so pods stay Pending (as on a cluster without nodes); the
ReplicaSet and Deployment controllers still create, scale and roll ReplicaSets.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Kubectl
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e


def pod_names(kubectl: Kubectl, selector: str) -> list[str]:
    out = kubectl.run("get", "pods", "-l", selector, "-o", "name").stdout.split()
    return sorted(out)


def test_deployment_scale_history_and_undo(kubectl: Kubectl) -> None:
    kubectl.run("create", "deployment", "wl", "--image=recon.local/busybox:1", "--replicas=3")
    wait_until(lambda: len(pod_names(kubectl, "app=wl")) == 3, what="3 pods")
    rs = kubectl.json("get", "replicasets", "-l", "app=wl")["items"]
    assert len(rs) == 1 and rs[0]["metadata"]["name"].startswith("wl-")
    assert rs[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    kubectl.run("scale", "deployment/wl", "--replicas=1")
    wait_until(lambda: len(pod_names(kubectl, "app=wl")) == 1, what="scale down to 1")
    kubectl.run("set", "image", "deployment/wl", "busybox=recon.local/busybox:2")
    wait_until(
        lambda: len(kubectl.json("get", "rs", "-l", "app=wl")["items"]) == 2,
        what="a second ReplicaSet",
    )
    history = kubectl.run("rollout", "history", "deployment/wl").stdout
    assert "1 " in history and "2 " in history
    kubectl.run("rollout", "undo", "deployment/wl", "--to-revision=1")

    def template_image() -> str:
        d = kubectl.json("get", "deployment", "wl")
        return str(d["spec"]["template"]["spec"]["containers"][0]["image"])

    assert template_image() == "recon.local/busybox:1"
    wait_until(
        lambda: (
            sorted(
                r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                for r in kubectl.json("get", "rs", "-l", "app=wl")["items"]
            )
            == ["2", "3"]
        ),
        what="revision 1 to come back as 3",
    )
    # Scaling down after rollouts (and mid-rollout: these pods never become ready) reaches
    # every ReplicaSet; `kubectl describe` lists the resizes.
    kubectl.run("scale", "deployment/wl", "--replicas=0")
    wait_until(lambda: pod_names(kubectl, "app=wl") == [], what="scaled to 0 after rollouts")
    described = kubectl.run("describe", "deployment", "wl").stdout
    assert "ScalingReplicaSet" in described and "Scaled down replica set wl-" in described
    kubectl.run("delete", "deployment", "wl")
    wait_until(lambda: pod_names(kubectl, "app=wl") == [], what="cascading deletion")
    assert kubectl.json("get", "rs", "-l", "app=wl")["items"] == []


def test_create_job_from_cronjob(kubectl: Kubectl) -> None:
    kubectl.run(
        "create",
        "cronjob",
        "nightly",
        "--image=recon.local/busybox",
        "--schedule=0 3 * * *",
        "--",
        "echo",
        "hi",
    )
    out = kubectl.run("create", "job", "--from=cronjob/nightly", "nightly-manual").stdout
    assert "job.batch/nightly-manual created" in out
    job = kubectl.json("get", "job", "nightly-manual")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    wait_until(lambda: pod_names(kubectl, "job-name=nightly-manual"), what="the Job's pod")
