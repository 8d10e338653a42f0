"""The CSR cleaner: decided requests go after an hour, pending ones after a day, issued ones
when their certificate expires; each is looked at again when its deadline comes."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reconciler.clock import ManualClock, rfc3339
from reconciler.controllers.csr_cleaner import CsrCleaner, removal_time
from tests.unit.apiserver.test_csr import csr

T0 = datetime(2026, 1, 1, tzinfo=UTC)
API = "certificates.k8s.io/v1"
KIND = "CertificateSigningRequest"


def certificate(expires: datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jane")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(T0 - timedelta(days=1))
        .not_valid_after(expires)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


def stored(conditions: list[dict[str, Any]], cert: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": conditions}
    if cert is not None:
        status["certificate"] = cert
    return {"metadata": {"creationTimestamp": rfc3339(T0)}, "status": status}


def decided(kind: str, at: datetime, field: str = "lastUpdateTime") -> dict[str, Any]:
    return {"type": kind, "status": "True", "reason": "ByTest", field: rfc3339(at)}


def test_when_each_request_goes() -> None:
    assert removal_time(stored([])) == T0 + timedelta(hours=24)
    approved_at = T0 + timedelta(minutes=5)
    assert removal_time(stored([decided("Approved", approved_at)])) == approved_at + timedelta(
        hours=1
    )
    denied = decided("Denied", approved_at, "lastTransitionTime")
    assert removal_time(stored([denied])) == approved_at + timedelta(hours=1)
    soon = T0 + timedelta(minutes=10)
    issued = stored([decided("Approved", approved_at)], certificate(soon))
    assert removal_time(issued) == soon.replace(microsecond=0)
    assert removal_time({"metadata": {}, "status": {}}) is None


async def test_requests_go_when_their_deadline_comes(plane: Any) -> None:
    clock = ManualClock(T0)
    p = await plane(CsrCleaner, clock=clock)
    await p.client.create(csr("pending"))
    approved = await p.client.create(csr("approved"))
    approval = {
        **approved,
        "status": {"conditions": [decided("Approved", T0)]},
    }
    await p.client.update(approval, subresource="approval")

    async def names() -> set[str]:
        return {c["metadata"]["name"] for c in (await p.client.list(API, KIND)).items}

    async def only(expected: set[str]) -> bool:
        return await names() == expected

    clock.advance(59 * 60)
    await asyncio.sleep(0.1)  # room for a wrong deletion to happen
    assert await names() == {"pending", "approved"}
    clock.advance(61)
    await p.eventually(lambda: only({"pending"}), what="the approved request gone")
    clock.advance(22 * 3600)
    await asyncio.sleep(0.1)
    assert await names() == {"pending"}
    clock.advance(3600)
    await p.eventually(lambda: only(set()), what="the pending request gone after a day")
