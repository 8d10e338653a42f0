"""A new user by certificate, the way the Kubernetes documentation adds one, with the real
kubectl: a key and a certificate request made offline, the request applied as a
CertificateSigningRequest, `kubectl certificate approve`, the certificate read from its
status into a kubeconfig user, and then that user is who the API server says it is, with
what RBAC gives it."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import Kubectl, ReconServer, require_kubectl
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

SIGNER = "kubernetes.io/kube-apiserver-client"


def request_pem(key: ec.EllipticCurvePrivateKey, name: str, *groups: str) -> bytes:
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    subject += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(subject))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def csr_object(name: str, pem: bytes, usages: list[str]) -> dict[str, object]:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": SIGNER,
            "expirationSeconds": 86400,
            "usages": usages,
        },
    }


def run(kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [require_kubectl(), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}: {result.stderr}")
    return result


def test_a_user_by_certificate_signing_request(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = request_pem(key, "jane", "dev", "qa")
    kubectl.run("apply", "-f", "-", input=json.dumps(csr_object("jane", pem, ["client auth"])))
    created = kubectl.json("get", "csr", "jane")
    # The API records who asked, whatever the request said.
    assert created["spec"]["username"] == "recon-admin"
    assert "system:masters" in created["spec"]["groups"]
    assert not (created.get("status") or {}).get("certificate")
    row = kubectl.run("get", "csr", "jane", "--no-headers").stdout.split()
    assert row[-1] == "Pending" and SIGNER in row

    out = kubectl.run("certificate", "approve", "jane").stdout
    assert "certificatesigningrequest.certificates.k8s.io/jane approved" in out

    def issued() -> str:
        status = kubectl.json("get", "csr", "jane").get("status") or {}
        return str(status.get("certificate") or "")

    certificate = base64.b64decode(wait_until(issued, 30, "the certificate issued"))
    signed = x509.load_pem_x509_certificate(certificate)
    assert signed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "jane"
    lifetime = signed.not_valid_after_utc - signed.not_valid_before_utc
    assert 86400 <= lifetime.total_seconds() <= 86400 + 600  # backdated five minutes
    row = kubectl.run("get", "csr", "jane", "--no-headers").stdout.split()
    assert row[-1] == "Approved,Issued"

    # Jane's kubeconfig: the cluster's, with her key and certificate as the user.
    config = tmp_path / "jane.kubeconfig"
    shutil.copy(server.kubeconfig, config)
    key_file, cert_file = tmp_path / "jane.key", tmp_path / "jane.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(certificate)
    run(
        config,
        "config",
        "set-credentials",
        "jane",
        f"--client-key={key_file}",
        f"--client-certificate={cert_file}",
        "--embed-certs=true",
    )
    context = run(config, "config", "current-context").stdout.strip()
    run(config, "config", "set-context", context, "--user=jane")

    whoami = json.loads(run(config, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == "jane"
    assert whoami["status"]["userInfo"]["groups"] == ["dev", "qa", "system:authenticated"]
    denied = run(config, "get", "pods", "-n", "default", check=False)
    assert denied.returncode != 0
    assert 'User "jane" cannot list resource "pods"' in denied.stderr

    kubectl.run("create", "rolebinding", "jane-view", "--clusterrole=view", "--group=qa")
    wait_until(
        lambda: run(config, "get", "pods", "-n", "default", check=False).returncode == 0,
        10,
        "jane may list pods once her group is bound to view",
    )
    assert run(config, "auth", "can-i", "delete", "pods", check=False).stdout.strip() == "no"
    # Not allowed to approve: her own second request stays as it is.
    second = request_pem(ec.generate_private_key(ec.SECP256R1()), "jane-2")
    kubectl.run("apply", "-f", "-", input=json.dumps(csr_object("jane-2", second, ["client auth"])))
    refused = run(config, "certificate", "approve", "jane-2", check=False)
    assert refused.returncode != 0
    kubectl.run("delete", "rolebinding", "jane-view")


def test_bad_requests_are_refused_or_failed(kubectl: Kubectl) -> None:
    broken = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "broken"},
        "spec": {
            "request": base64.b64encode(b"not a request").decode(),
            "signerName": SIGNER,
            "usages": ["client auth"],
        },
    }
    result = kubectl.run("apply", "-f", "-", input=json.dumps(broken), check=False)
    assert result.returncode != 0
    assert "spec.request: Invalid value" in result.stderr
    assert "PEM block type must be CERTIFICATE REQUEST" in result.stderr
    assert kubectl.run("get", "csr", "broken", check=False).returncode != 0

    # A valid request with a server usage: approved, then failed by the signer.
    pem = request_pem(ec.generate_private_key(ec.SECP256R1()), "web")
    kubectl.run("apply", "-f", "-", input=json.dumps(csr_object("web", pem, ["server auth"])))
    kubectl.run("certificate", "approve", "web")

    def failed() -> dict[str, str]:
        status = kubectl.json("get", "csr", "web").get("status") or {}
        found = [c for c in status.get("conditions") or [] if c["type"] == "Failed"]
        return found[0] if found else {}

    condition = wait_until(failed, 30, "the signer fails the request")
    assert (condition["reason"], condition["message"]) == (
        "SignerValidationFailure",
        "invalid usage for client certificate: server auth",
    )
    # Denied is final: approving it afterwards is refused.
    pem = request_pem(ec.generate_private_key(ec.SECP256R1()), "mallory")
    kubectl.run("apply", "-f", "-", input=json.dumps(csr_object("mallory", pem, ["client auth"])))
    kubectl.run("certificate", "deny", "mallory")
    again = kubectl.run("certificate", "approve", "mallory", check=False)
    assert again.returncode != 0 or "already" in again.stdout + again.stderr
    status = kubectl.json("get", "csr", "mallory").get("status") or {}
    assert [c["type"] for c in status["conditions"]] == ["Denied"]
    assert not status.get("certificate")
    for name in ("web", "mallory", "jane", "jane-2"):
        kubectl.run("delete", "csr", name, "--ignore-not-found")
