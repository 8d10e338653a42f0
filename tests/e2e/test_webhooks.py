"""`POST /webhooks/github` on `recon serve`: a wrong signature gets 401 and syncs nothing; the
right one syncs the pushed change within 2 s (the Application's interval is an hour)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import commit_all, git, wait_until

pytestmark = pytest.mark.e2e

SECRET = b"webhook-s3cret"


def _commit(repo: Path, value: str) -> str:
    (repo / "config.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hooked\ndata:\n  v: {value}\n"
    )
    return commit_all(repo, value)


def _post(server: ReconServer, body: bytes, signature: str) -> int:
    request = urllib.request.Request(
        f"{server.url}/webhooks/github",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature,
        },
    )  # no bearer token: a webhook authenticates with its signature
    try:
        with urllib.request.urlopen(request, context=server.ssl_context(), timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_webhook_signature_gates_an_immediate_sync(server: ReconServer, tmp_path: Path) -> None:
    kubectl = Kubectl(server)
    namespace = f"hook-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", namespace)
    repo = tmp_path / "hooked-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    first = _commit(repo, "one")
    name = f"hooked-{namespace}"
    app = {
        "apiVersion": "recon.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "source": {"repoURL": f"file://{repo}", "targetRevision": "main"},
            "destination": {"namespace": namespace},
            "syncPolicy": {"automated": {}, "interval": "1h"},
        },
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(app))

    def value() -> str | None:
        got = kubectl.run("-n", namespace, "get", "configmap", "hooked", "-o", "json", check=False)
        return json.loads(got.stdout)["data"]["v"] if got.returncode == 0 else None

    wait_until(lambda: value() == "one", 30, "the first sync")
    secret = kubectl.run(
        "-n", "default", "create", "secret", "generic", "recon-webhooks",
        f"--from-literal=github={SECRET.decode()}", "--dry-run=client", "-o", "json",
    ).stdout  # fmt: skip
    kubectl.run("apply", "-f", "-", input=secret)

    second = _commit(repo, "two")
    payload = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": first,
            "after": second,
            "repository": {"clone_url": f"file://{repo}", "full_name": "e2e/hooked"},
        }
    ).encode()
    good = "sha256=" + hmac.new(SECRET, payload, hashlib.sha256).hexdigest()
    bad = "sha256=" + hmac.new(b"not-the-secret", payload, hashlib.sha256).hexdigest()

    assert _post(server, payload, bad) == 401
    time.sleep(2.5)
    assert value() == "one"  # nothing synced: the interval is an hour

    started = time.monotonic()
    assert _post(server, payload, good) == 202
    wait_until(lambda: value() == "two", 2.0, "the webhook's sync")
    assert time.monotonic() - started <= 2.0
    status = kubectl.json("get", "application", name)["status"]
    assert status["lastAppliedRevision"] == second
    kubectl.run("delete", "application", name, "--timeout=60s")
    kubectl.run("delete", "namespace", namespace, "--wait=false")
