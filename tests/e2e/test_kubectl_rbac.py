"""RBAC with the real kubectl: ServiceAccounts, tokens, Roles, `auth can-i`, `auth whoami`."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

APP = "system:serviceaccount:default:app"


def can_i(kubectl: Kubectl, *args: str) -> tuple[int, str]:
    result = kubectl.run("auth", "can-i", *args, check=False)
    return result.returncode, result.stdout.strip()


def test_a_service_account_gets_what_its_role_grants(kubectl: Kubectl) -> None:
    kubectl.run("create", "sa", "app")
    kubectl.run("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    kubectl.run(
        "create",
        "rolebinding",
        "app-reads-pods",
        "--role=pod-reader",
        "--serviceaccount=default:app",
    )
    assert can_i(kubectl, "list", "pods", f"--as={APP}") == (0, "yes")
    assert can_i(kubectl, "delete", "pods", f"--as={APP}") == (1, "no")
    assert can_i(kubectl, "list", "pods", f"--as={APP}", "-n", "kube-system") == (1, "no")
    assert can_i(kubectl, "list", "pods", "--as=alice", "--as-group=system:masters") == (0, "yes")

    token = kubectl.run("create", "token", "app").stdout.strip()
    assert token.count(".") == 2
    as_app = kubectl.run("--token", token, "get", "pods", check=False)
    assert as_app.returncode == 0, as_app.stderr
    secrets = kubectl.run("--token", token, "get", "secrets", check=False)
    assert secrets.returncode == 1
    assert (
        "Error from server (Forbidden): secrets is forbidden: "
        'User "system:serviceaccount:default:app" cannot list resource "secrets" '
        'in API group "" in the namespace "default"'
    ) in secrets.stderr

    whoami = kubectl.run("--token", token, "auth", "whoami", "-o", "json", check=False)
    assert whoami.returncode == 0, whoami.stderr
    assert f'"username": "{APP}"' in whoami.stdout
    assert '"system:serviceaccounts:default"' in whoami.stdout

    listing = kubectl.run("--token", token, "auth", "can-i", "--list", check=False)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert ["pods", "[]", "[]", "[get", "list]"] in rows
    assert any(row[:1] == ["selfsubjectaccessreviews.authorization.k8s.io"] for row in rows)


def test_the_admin_is_cluster_admin(kubectl: Kubectl) -> None:
    whoami = kubectl.run("auth", "whoami").stdout
    assert "recon-admin" in whoami and "system:masters" in whoami
    assert can_i(kubectl, "*", "*") == (0, "yes")
    rows = [line.split() for line in kubectl.run("auth", "can-i", "--list").stdout.splitlines()]
    assert ["*.*", "[]", "[]", "[*]"] in rows


def test_the_default_cluster_roles_serve_rolebindings(kubectl: Kubectl) -> None:
    names = kubectl.run("get", "clusterroles", "-o", "name").stdout.split()
    for role in ("cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery"):
        assert f"clusterrole.rbac.authorization.k8s.io/{role}" in names
    kubectl.run("create", "sa", "viewer")
    kubectl.run("create", "sa", "editor")
    kubectl.run(
        "create",
        "rolebinding",
        "viewer-view",
        "--clusterrole=view",
        "--serviceaccount=default:viewer",
    )
    kubectl.run(
        "create",
        "rolebinding",
        "editor-edit",
        "--clusterrole=edit",
        "--serviceaccount=default:editor",
    )
    viewer, editor = "system:serviceaccount:default:viewer", "system:serviceaccount:default:editor"
    # The aggregation controller fills `view` and `edit` shortly after start.
    for _ in range(100):
        if can_i(kubectl, "list", "deployments.apps", f"--as={viewer}")[0] == 0:
            break
        time.sleep(0.05)
    assert can_i(kubectl, "list", "deployments.apps", f"--as={viewer}") == (0, "yes")
    assert can_i(kubectl, "create", "deployments.apps", f"--as={viewer}") == (1, "no")
    assert can_i(kubectl, "get", "secrets", f"--as={viewer}") == (1, "no")
    assert can_i(kubectl, "create", "deployments.apps", f"--as={editor}") == (0, "yes")
    assert can_i(kubectl, "get", "secrets", f"--as={editor}") == (0, "yes")
    assert can_i(kubectl, "create", "rolebindings.rbac.authorization.k8s.io", f"--as={editor}") == (
        1,
        "no",
    )
    token = kubectl.run("create", "token", "viewer", "--duration=10m").stdout.strip()
    denied = kubectl.run(
        "--token", token, "create", "configmap", "x", "--from-literal=a=b", check=False
    )
    assert denied.returncode == 1
    assert 'cannot create resource "configmaps" in API group ""' in denied.stderr
    assert "default" in kubectl.run("get", "sa", "-o", "name").stdout


def test_an_admin_of_a_namespace_cannot_grant_more_than_it_holds(kubectl: Kubectl) -> None:
    ns = "rbac-escalation"
    kubectl.run("create", "namespace", ns)
    try:
        kubectl.run("create", "sa", "lead", "-n", ns)
        kubectl.run(
            "create",
            "rolebinding",
            "lead-admin",
            "--clusterrole=admin",
            f"--serviceaccount={ns}:lead",
            "-n",
            ns,
        )
        lead = f"system:serviceaccount:{ns}:lead"
        for _ in range(100):  # the aggregation controller fills `admin` shortly after start
            if (
                can_i(
                    kubectl, "create", "roles.rbac.authorization.k8s.io", f"--as={lead}", "-n", ns
                )[0]
                == 0
            ):
                break
            time.sleep(0.05)
        # within what `admin` holds in the namespace: allowed
        kubectl.run(
            "create",
            "role",
            "pod-reader",
            "--verb=get,list",
            "--resource=pods",
            "-n",
            ns,
            f"--as={lead}",
        )
        # nodes are cluster-scoped: `admin` in a namespace does not hold them
        refused = kubectl.run(
            "create",
            "clusterrolebinding",
            "lead-cluster-admin",
            "--clusterrole=cluster-admin",
            f"--serviceaccount={ns}:lead",
            f"--as={lead}",
            check=False,
        )
        assert refused.returncode != 0
        refused = kubectl.run(
            "create",
            "role",
            "node-reader",
            "--verb=get",
            "--resource=nodes",
            "-n",
            ns,
            f"--as={lead}",
            check=False,
        )
        assert refused.returncode != 0
        assert "is attempting to grant RBAC permissions not currently held" in refused.stderr
        assert 'Resources:["nodes"]' in refused.stderr
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
