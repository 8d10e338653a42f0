"""kubectl's typed `create` commands send protobuf: the server must read exactly what JSON says.

Each command runs twice with a server-side dry run: once as kubectl sends it (protobuf), once
as the JSON of the same object (`--dry-run=client -o json` fed to `create -f`). The two
server answers must be identical but for uid and creationTimestamp.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop what differs between two creations (uid, also used in a Job's selector)."""
    uid = obj.get("metadata", {}).get("uid", "")
    text = json.dumps(obj).replace(uid, "UID") if uid else json.dumps(obj)
    stripped: dict[str, Any] = json.loads(text)
    meta = stripped.get("metadata", {})
    for key in ("uid", "creationTimestamp", "resourceVersion", "managedFields"):
        meta.pop(key, None)
    return stripped


def _with(command: list[str], *flags: str) -> list[str]:
    """Flags go before a `--` that starts the container command."""
    cut = command.index("--") if "--" in command else len(command)
    return [*command[:cut], *flags, *command[cut:]]


COMMANDS = [
    ["create", "configmap", "pb-cm", "--from-literal=a=b", "--from-literal=empty="],
    ["create", "secret", "generic", "pb-secret", "--from-literal=password=s3cret"],
    ["create", "deployment", "pb-deploy", "--image=busybox", "--replicas=0", "--port=8080"],
    ["create", "namespace", "pb-ns"],
    ["create", "service", "clusterip", "pb-svc", "--tcp=80:8080"],
    ["create", "service", "nodeport", "pb-np", "--tcp=80:http", "--node-port=30123"],
    ["create", "job", "pb-job", "--image=busybox", "--", "sleep", "1"],
    ["create", "cronjob", "pb-cron", "--image=busybox", "--schedule=*/5 * * * *"],
    ["create", "serviceaccount", "pb-sa"],
    ["create", "role", "pb-role", "--verb=get,list", "--resource=pods"],
    ["create", "quota", "pb-quota", "--hard=cpu=1,memory=1G,pods=0"],
    ["create", "poddisruptionbudget", "pb-pdb", "--selector=app=x", "--min-available=0"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[1:3]) for c in COMMANDS])
def test_protobuf_create_reads_like_json(
    kubectl: Kubectl, command: list[str], tmp_path: Path
) -> None:
    via_protobuf = _strip(
        json.loads(kubectl.run(*_with(command, "--dry-run=server", "-o", "json")).stdout)
    )
    as_json = kubectl.run(*_with(command, "--dry-run=client", "-o", "json")).stdout
    path = tmp_path / "obj.json"
    path.write_text(as_json)
    via_json = _strip(kubectl.json("create", "-f", str(path), "--dry-run=server"))
    assert via_protobuf == via_json
    assert json.loads(as_json)["kind"] == via_protobuf["kind"]


def test_create_configmap_really_stores(kubectl: Kubectl, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)))
    kubectl.run(
        "create",
        "configmap",
        "pb-real",
        "--from-literal=greeting=hi",
        f"--from-file=blob.bin={blob}",
    )
    got = kubectl.json("get", "configmap", "pb-real")
    assert got["data"] == {"greeting": "hi"}
    assert len(got["binaryData"]["blob.bin"]) > 300  # base64 of the 256 bytes
    kubectl.run("create", "deployment", "zero", "--image=busybox", "--replicas=0")
    assert kubectl.json("get", "deployment", "zero")["spec"]["replicas"] == 0
