"""Immutable fields with the real kubectl: the apiserver refuses the change in upstream's
words, kubectl prints them and exits non-zero, and nothing is stored.

Users meet these refusals every time a workload is reshaped in git (a Deployment's new
selector, a Job's new template, a StatefulSet's new `serviceName`, new data for a ConfigMap
marked `immutable`), and tools such as Argo CD recognise them by their wording to decide to
delete and re-create. Each refusal is tried through `kubectl apply` (client- and
server-side), `kubectl patch` and `kubectl replace`, and the stored object is compared
afterwards; a change the rules allow goes through, so the refusals are not blanket ones.

API only: no node runs, so the Jobs' and workloads' pods stay Pending (which changes
nothing here). The values upstream prints as Go structs (`v1.LabelSelector{...}`) Recon
prints as JSON, so only the words around them are compared for those.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

STS_FORBIDDEN = (
    "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
    "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden"
)
IMMUTABLE_SET = "Forbidden: field is immutable when `immutable` is set"


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    name = f"immutable-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def refused(kubectl: Kubectl, *args: str, input: str | None = None) -> str:
    """kubectl's error output for a command the API server must refuse."""
    result = kubectl.run(*args, input=input, check=False)
    assert result.returncode != 0, f"{' '.join(args)} was accepted: {result.stdout}"
    assert result.stdout == ""
    return result.stderr


def merge_patch_refused(kubectl: Kubectl, ns: str, target: str, patch: str) -> str:
    """kubectl's error output for a merge patch the API server must refuse."""
    return refused(kubectl, "-n", ns, "patch", target, "--type=merge", "-p", patch)


def deployment(ns: str, app: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "recon.local/busybox:latest",
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ]
                },
            },
        },
    }


def test_a_deployment_keeps_its_selector(kubectl: Kubectl, ns: str) -> None:
    kubectl.run("apply", "-f", "-", input=json.dumps(deployment(ns, "web")))
    before = kubectl.json("-n", ns, "get", "deployment", "web")
    prefix = 'The Deployment "web" is invalid: spec.selector: Invalid value: '

    def says_immutable(stderr: str, new_app: str) -> None:
        line = stderr.strip()
        assert line.startswith(prefix), stderr
        assert line.endswith(": field is immutable"), stderr
        assert f'"app":"{new_app}"' in line  # the refused value, the new selector
        assert "\n" not in line  # one cause: kubectl prints it on one line

    says_immutable(
        refused(kubectl, "apply", "-f", "-", input=json.dumps(deployment(ns, "api"))), "api"
    )
    says_immutable(
        refused(
            kubectl,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=json.dumps(deployment(ns, "ssa")),
        ),
        "ssa",
    )
    patch = {
        "spec": {
            "selector": {"matchLabels": {"app": "patched"}},
            "template": {"metadata": {"labels": {"app": "patched"}}},
        }
    }
    says_immutable(
        refused(kubectl, "-n", ns, "patch", "deployment", "web", "-p", json.dumps(patch)),
        "patched",
    )
    replacement = kubectl.json("-n", ns, "get", "deployment", "web")
    replacement["spec"]["selector"] = {"matchLabels": {"app": "replaced"}}
    replacement["spec"]["template"]["metadata"]["labels"] = {"app": "replaced"}
    says_immutable(
        refused(kubectl, "replace", "-f", "-", input=json.dumps(replacement)), "replaced"
    )

    after = kubectl.json("-n", ns, "get", "deployment", "web")
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]

    # what may change still does: a new replica count with the same selector
    kubectl.run("apply", "-f", "-", input=json.dumps(deployment(ns, "web", replicas=2)))
    scaled = kubectl.json("-n", ns, "get", "deployment", "web")
    assert scaled["spec"]["replicas"] == 2
    assert scaled["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert scaled["metadata"]["generation"] == before["metadata"]["generation"] + 1


def job(ns: str, word: str, mode: str = "NonIndexed") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once", "namespace": ns},
        "spec": {
            "completions": 2,
            "parallelism": 1,
            "completionMode": mode,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "c",
                            "image": "recon.local/busybox:latest",
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["echo", word],
                        }
                    ],
                }
            },
        },
    }


def test_a_job_keeps_its_template_and_completion_mode(kubectl: Kubectl, ns: str) -> None:
    kubectl.run("apply", "-f", "-", input=json.dumps(job(ns, "one")))
    before = kubectl.json("-n", ns, "get", "job", "once")
    invalid = 'The Job "once" is invalid: '
    mode_line = 'spec.completionMode: Invalid value: "Indexed": field is immutable'

    template = refused(kubectl, "apply", "-f", "-", input=json.dumps(job(ns, "two")))
    assert template.startswith(invalid + "spec.template: Invalid value: "), template
    assert template.strip().endswith(": field is immutable")
    assert '"command":["echo","two"]' in template  # the refused template is the new one

    mode = merge_patch_refused(kubectl, ns, "job/once", '{"spec":{"completionMode":"Indexed"}}')
    assert mode.strip() == invalid + mode_line

    image = refused(kubectl, "-n", ns, "set", "image", "job/once", "c=recon.local/busybox:2")
    assert image.startswith(
        'error: failed to patch image update to pod template: Job.batch "once" is invalid: '
        "spec.template: Invalid value: "
    ), image
    assert image.strip().endswith(": field is immutable")

    # both at once: kubectl lists the causes, one a line
    replacement = kubectl.json("-n", ns, "get", "job", "once")
    replacement["spec"]["completionMode"] = "Indexed"
    replacement["spec"]["template"]["spec"]["containers"][0]["command"] = ["echo", "three"]
    both = refused(kubectl, "replace", "-f", "-", input=json.dumps(replacement))
    first, *causes = [line.rstrip() for line in both.strip().split("\n")]
    assert first == invalid.rstrip(), both
    assert len(causes) == 2 and "* " + mode_line in causes, both
    (template_line,) = [c for c in causes if c != "* " + mode_line]
    assert template_line.startswith("* spec.template: Invalid value: "), both
    assert template_line.endswith(": field is immutable")
    assert '"command":["echo","three"]' in template_line

    after = kubectl.json("-n", ns, "get", "job", "once")
    assert after["spec"]["template"] == before["spec"]["template"]
    assert after["spec"]["completionMode"] == "NonIndexed"
    assert after["metadata"]["generation"] == before["metadata"]["generation"]

    # parallelism is not frozen
    kubectl.run(
        "-n", ns, "patch", "job", "once", "--type=merge", "-p", '{"spec":{"parallelism":2}}'
    )
    assert kubectl.json("-n", ns, "get", "job", "once")["spec"]["parallelism"] == 2


def test_a_non_indexed_job_keeps_its_completions(kubectl: Kubectl, ns: str) -> None:
    kubectl.run("apply", "-f", "-", input=json.dumps(job(ns, "one")))
    stderr = merge_patch_refused(kubectl, ns, "job/once", '{"spec":{"completions":5}}')
    assert stderr.strip() == (
        'The Job "once" is invalid: spec.completions: Invalid value: 5: field is immutable'
    )
    assert kubectl.json("-n", ns, "get", "job", "once")["spec"]["completions"] == 2


def statefulset(ns: str, service: str = "db", policy: str = "OrderedReady") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {
            "serviceName": service,
            "replicas": 1,
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "recon.local/busybox:latest",
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ]
                },
            },
        },
    }


def test_a_statefulset_changes_only_what_upstream_allows(kubectl: Kubectl, ns: str) -> None:
    kubectl.run("apply", "-f", "-", input=json.dumps(statefulset(ns)))
    before = kubectl.json("-n", ns, "get", "statefulset", "db")
    expected = f'The StatefulSet "db" is invalid: {STS_FORBIDDEN}'

    service = refused(kubectl, "apply", "-f", "-", input=json.dumps(statefulset(ns, "db2")))
    assert service.strip() == expected
    policy = merge_patch_refused(
        kubectl, ns, "statefulset/db", '{"spec":{"podManagementPolicy":"Parallel"}}'
    )
    assert policy.strip() == expected
    claims = {
        "op": "add",
        "path": "/spec/volumeClaimTemplates",
        "value": [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ],
    }
    volumes = refused(
        kubectl,
        "-n",
        ns,
        "patch",
        "statefulset",
        "db",
        "--type=json",
        "-p",
        json.dumps([claims]),
    )
    assert volumes.strip() == expected
    replacement = kubectl.json("-n", ns, "get", "statefulset", "db")
    replacement["spec"]["serviceName"] = "db3"
    assert refused(kubectl, "replace", "-f", "-", input=json.dumps(replacement)).strip() == (
        expected
    )

    after = kubectl.json("-n", ns, "get", "statefulset", "db")
    assert after["spec"] == before["spec"]

    # the fields upstream lets change, all in one patch
    allowed = {
        "spec": {
            "replicas": 3,
            "minReadySeconds": 5,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete",
                "whenScaled": "Retain",
            },
            "template": {"metadata": {"annotations": {"note": "new"}}},
        }
    }
    kubectl.run("-n", ns, "patch", "statefulset", "db", "--type=merge", "-p", json.dumps(allowed))
    changed = kubectl.json("-n", ns, "get", "statefulset", "db")["spec"]
    assert (changed["replicas"], changed["minReadySeconds"]) == (3, 5)
    assert changed["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    assert changed["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    assert changed["template"]["metadata"]["annotations"] == {"note": "new"}
    assert (changed["serviceName"], changed["podManagementPolicy"]) == ("db", "OrderedReady")


def test_a_statefulset_selector_change_is_refused_as_a_spec_change(
    kubectl: Kubectl, ns: str
) -> None:
    kubectl.run("apply", "-f", "-", input=json.dumps(statefulset(ns)))
    moved = statefulset(ns)
    moved["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    moved["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    stderr = refused(kubectl, "apply", "-f", "-", input=json.dumps(moved))
    assert stderr.strip() == f'The StatefulSet "db" is invalid: {STS_FORBIDDEN}'


def config_map(ns: str, mode: str, immutable: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": ns},
        "immutable": immutable,
        "data": {"mode": mode},
    }


def test_an_immutable_config_map_keeps_its_data_and_its_mark(kubectl: Kubectl, ns: str) -> None:
    kubectl.run("apply", "-f", "-", input=json.dumps(config_map(ns, "blue")))
    before = kubectl.json("-n", ns, "get", "configmap", "settings")
    invalid = 'The ConfigMap "settings" is invalid: '

    data = refused(kubectl, "apply", "-f", "-", input=json.dumps(config_map(ns, "green")))
    assert data.strip() == invalid + "data: " + IMMUTABLE_SET
    binary = merge_patch_refused(
        kubectl, ns, "configmap/settings", '{"binaryData":{"blob":"AAE="}}'
    )
    assert binary.strip() == invalid + "binaryData: " + IMMUTABLE_SET
    flip = refused(kubectl, "-n", ns, "patch", "configmap", "settings", "-p", '{"immutable":false}')
    assert flip.strip() == invalid + "immutable: " + IMMUTABLE_SET
    unmark = refused(
        kubectl,
        "-n",
        ns,
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/immutable"}]',
    )
    assert unmark.strip() == invalid + "immutable: " + IMMUTABLE_SET
    replacement = kubectl.json("-n", ns, "get", "configmap", "settings")
    replacement["immutable"] = False
    replacement["data"]["mode"] = "red"
    both = refused(kubectl, "replace", "-f", "-", input=json.dumps(replacement))
    lines = [line.rstrip() for line in both.strip().split("\n")]
    assert lines[0] == invalid.rstrip()
    assert sorted(lines[1:]) == [f"* data: {IMMUTABLE_SET}", f"* immutable: {IMMUTABLE_SET}"]

    after = kubectl.json("-n", ns, "get", "configmap", "settings")
    assert (after["data"], after["immutable"]) == ({"mode": "blue"}, True)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    # its metadata may change; to change its data it is deleted and made again
    kubectl.run("-n", ns, "label", "configmap", "settings", "tier=web")
    assert kubectl.json("-n", ns, "get", "configmap", "settings")["metadata"]["labels"] == {
        "tier": "web"
    }
    kubectl.run("-n", ns, "delete", "configmap", "settings")
    kubectl.run("apply", "-f", "-", input=json.dumps(config_map(ns, "green")))
    assert kubectl.json("-n", ns, "get", "configmap", "settings")["data"] == {"mode": "green"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_an_immutable_secret_keeps_its_data_and_its_mark(kubectl: Kubectl, ns: str) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": ns},
        "type": "Opaque",
        "immutable": True,
        "data": {"key": _b64("one")},
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(secret))
    before = kubectl.json("-n", ns, "get", "secret", "token")
    invalid = 'The Secret "token" is invalid: '

    # stringData is merged into data before the check, as upstream does
    written = {**secret, "data": {}, "stringData": {"key": "two"}}
    by_string = refused(kubectl, "apply", "-f", "-", input=json.dumps(written))
    assert by_string.strip() == invalid + "data: " + IMMUTABLE_SET
    by_patch = refused(
        kubectl,
        "-n",
        ns,
        "patch",
        "secret",
        "token",
        "-p",
        json.dumps({"data": {"key": _b64("three")}}),
    )
    assert by_patch.strip() == invalid + "data: " + IMMUTABLE_SET
    flip = refused(kubectl, "apply", "-f", "-", input=json.dumps({**secret, "immutable": False}))
    assert flip.strip() == invalid + "immutable: " + IMMUTABLE_SET

    after = kubectl.json("-n", ns, "get", "secret", "token")
    assert (after["data"], after["immutable"]) == ({"key": _b64("one")}, True)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    # writing the same value again is no change, so it is allowed
    same = kubectl.run(
        "-n", ns, "patch", "secret", "token", "-p", json.dumps({"stringData": {"key": "one"}})
    )
    assert same.stdout.strip() == "secret/token patched (no change)"
