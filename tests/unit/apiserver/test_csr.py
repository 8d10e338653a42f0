"""CertificateSigningRequests: who asked is recorded, bad requests are refused, approval
and status change only what they may, approving needs `approve` on the signer, the
signer issues client certificates the x509 authenticator accepts."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reconciler.apiserver.authn import certificate_user
from reconciler.apiserver.csr import (
    approval_update,
    prepare_create,
    spec_causes,
    status_update,
)
from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.escalation import CURRENT_USER
from reconciler.apiserver.rbac import UserInfo
from reconciler.apiserver.resources import ResourceType
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.controllers.csr_signing import signing_decision, usage_refusal

JSONDict = dict[str, Any]
SIGNER = "kubernetes.io/kube-apiserver-client"


def request(name: str = "jane", *groups: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    subject += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    built = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    pem = built.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return base64.b64encode(pem).decode()


def csr(name: str = "jane", usages: list[str] | None = None, **spec: Any) -> JSONDict:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": request(name, "dev"),
            "signerName": SIGNER,
            "usages": usages or ["client auth"],
            **spec,
        },
    }


def condition(kind: str) -> JSONDict:
    return {"type": kind, "status": "True", "reason": "ByTest", "message": "test"}


def test_create_records_the_requester_and_drops_the_status() -> None:
    obj = csr(username="root", groups=["system:masters"], status={"certificate": "x"})
    prepare_create(obj, UserInfo("jane", ("dev", "system:authenticated"), "u-1"))
    assert (obj["spec"]["username"], obj["spec"]["groups"], obj["spec"]["uid"]) == (
        "jane",
        ["dev", "system:authenticated"],
        "u-1",
    )
    assert "status" not in obj


def test_bad_requests_name_the_field() -> None:
    assert spec_causes(csr()) == []
    causes = {
        (c.field, c.message)
        for c in spec_causes(
            csr(
                request=base64.b64encode(b"hello").decode(),
                signerName="no-slash",
                usages=["client auth", "teleport", "client auth"],
                expirationSeconds=60,
            )
        )
    }
    assert (
        "spec.request",
        "Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST",
    ) in causes
    assert any(f == "spec.signerName" and "fully qualified" in m for f, m in causes)
    assert ("spec.usages[1]", 'Unsupported value: "teleport"') in causes
    assert ("spec.usages[2]", 'Duplicate value: "client auth"') in causes
    assert any(f == "spec.expirationSeconds" and "less than 600" in m for f, m in causes)
    empty = {(c.field, c.message) for c in spec_causes({"spec": {}})}
    assert empty == {
        ("spec.request", "Required value"),
        ("spec.signerName", "Required value"),
        ("spec.usages", "Required value"),
    }


def test_approval_changes_only_approved_or_denied_and_never_takes_them_back() -> None:
    old = csr()
    old["status"] = {"conditions": [condition("Failed")], "certificate": ""}
    approved, causes = approval_update(
        old,
        {"spec": {"usages": ["server auth"]}, "status": {"conditions": [condition("Approved")]}},
    )
    assert causes == []
    assert approved["spec"] == old["spec"]  # only the conditions change
    assert [c["type"] for c in approved["status"]["conditions"]] == ["Approved", "Failed"]
    _, causes = approval_update(approved, {"status": {"conditions": []}})
    assert [c.message for c in causes] == [
        "Forbidden: updates may not remove a condition of type 'Approved'"
    ]
    both = {"status": {"conditions": [condition("Approved"), condition("Denied")]}}
    _, causes = approval_update(old, both)
    assert "mutually exclusive" in causes[0].message


def test_status_keeps_the_approval_and_an_issued_certificate() -> None:
    old = csr()
    old["status"] = {"conditions": [condition("Approved")]}
    pem = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnope\n").decode()
    _, causes = status_update(old, {"status": {"certificate": pem}})
    assert causes and causes[0].field == "status.certificate"
    updated, causes = status_update(old, {"status": {"conditions": [condition("Failed")]}})
    assert causes == []
    assert [c["type"] for c in updated["status"]["conditions"]] == ["Approved", "Failed"]


def test_the_signer_signs_approved_client_requests_only() -> None:
    pending = csr()
    assert signing_decision(pending) is None
    pending["status"] = {"conditions": [condition("Approved")]}
    assert signing_decision(pending) == "sign"
    pending["status"]["conditions"].append(condition("Failed"))
    assert signing_decision(pending) is None
    server_usage = csr(usages=["server auth"])
    server_usage["status"] = {"conditions": [condition("Approved")]}
    assert signing_decision(server_usage) == "fail"
    assert usage_refusal(["server auth"]) == "invalid usage for client certificate: server auth"
    assert usage_refusal(["digital signature"]) == (
        "missing required usage for client certificate: client auth"
    )
    other = csr(signerName="example.com/mine")
    other["status"] = {"conditions": [condition("Approved")]}
    assert signing_decision(other) is None


def test_the_certificate_names_the_user() -> None:
    peer = {
        "subject": (
            (("organizationName", "dev"),),
            (("organizationName", "qa"),),
            (("commonName", "jane"),),
        )
    }
    assert certificate_user(peer) == UserInfo("jane", ("dev", "qa", "system:authenticated"))
    assert certificate_user({}) is None
    assert certificate_user({"subject": ((("organizationName", "dev"),),)}) is None


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiServer]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    yield server
    server.store.close()


def csr_type(api: ApiServer) -> ResourceType:
    found = api.registry.lookup("certificates.k8s.io", "v1", "certificatesigningrequests")
    assert isinstance(found, ResourceType)
    return found


def test_approving_needs_approve_on_the_signer(api: ApiServer) -> None:
    rt = csr_type(api)
    jane = UserInfo("jane", ("dev", "system:authenticated"))
    token = CURRENT_USER.set(jane)
    try:
        created = api.service.create(rt, "", csr())
        assert created["spec"]["username"] == "jane"
        approve = {**created, "status": {"conditions": [condition("Approved")]}}
        with pytest.raises(ApiError) as refused:
            api.service.update(rt, "", "jane", approve, subresource="approval")
        assert refused.value.code == 403
        assert refused.value.message == (
            'certificatesigningrequests.certificates.k8s.io "jane" is forbidden: user not '
            'permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client"'
        )
        stored = api.service.get(rt, "", "jane")
        assert not (stored.get("status") or {}).get("conditions")
    finally:
        CURRENT_USER.reset(token)
    # An in-process writer (the controllers) or system:masters approves.
    approved = api.service.update(rt, "", "jane", approve, subresource="approval")
    assert [c["type"] for c in approved["status"]["conditions"]] == ["Approved"]
    # The spec never changes, whatever an update says.
    changed = {**approved, "spec": {**approved["spec"], "signerName": "example.com/other"}}
    assert api.service.update(rt, "", "jane", changed)["spec"]["signerName"] == SIGNER


def test_a_signed_certificate_is_a_client_certificate_from_the_ca(api: ApiServer) -> None:
    from reconciler.apiserver.pki import ensure_credentials

    ensure_credentials(api.options.data_dir, "127.0.0.1", 6443)
    signer = api.client_signer()
    now = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    spec = csr(expirationSeconds=3600, usages=["client auth", "digital signature"])["spec"]
    pem = base64.b64decode(signer.issue(spec, now))
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "jane"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "dev"
    assert cert.issuer == signer.ca_cert.subject
    assert cert.not_valid_before_utc == now - datetime.timedelta(minutes=5)
    assert cert.not_valid_after_utc == now + datetime.timedelta(hours=1)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    signer.ca_cert.public_key().verify(  # type: ignore[union-attr,call-arg]
        cert.signature,
        cert.tbs_certificate_bytes,
        ec.ECDSA(hashes.SHA256()),  # type: ignore[arg-type]
    )
