"""The `kubernetes.io/kube-apiserver-client` signer: client certificates this API server
accepts (`authn.certificate_user`), signed with the cluster CA (`DATA_DIR/pki/ca.*`).

As upstream's signer in kube-controller-manager (which approved requests, and which usages
are a client's, is `controllers/csr_signing.py`'s to decide): the certificate carries the
request's subject (CN: the user name, O: the groups) and lasts `spec.expirationSeconds`,
at most a year (`--cluster-signing-duration`) and never past the CA; it is backdated five
minutes for clocks that differ.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from reconciler.apiserver.csr import parse_request
from reconciler.apiserver.pki import SigningKey, key_usage

__all__ = ["ClientSigner"]

MAX_DURATION = datetime.timedelta(days=365)
_BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class ClientSigner:
    ca_cert: x509.Certificate
    ca_key: SigningKey

    def issue(self, spec: Mapping[str, Any], now: datetime.datetime) -> str:
        """The base64 of the PEM certificate for the request in `spec` (its validity was
        checked when the CSR was created; ValueError if it is not one after all)."""
        request = parse_request(spec)
        usages = [str(u) for u in spec.get("usages") or []]
        seconds = spec.get("expirationSeconds")
        duration = MAX_DURATION
        if isinstance(seconds, int) and seconds > 0:
            duration = min(duration, datetime.timedelta(seconds=seconds))
        not_after = min(now + duration, self.ca_cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(self.ca_cert.subject)
            .public_key(request.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
        )
        signing, enciphering = "digital signature" in usages, "key encipherment" in usages
        if signing or enciphering:
            # only the bits the usages name; none asked for: no KeyUsage at all (as Go does)
            builder = builder.add_extension(
                key_usage(signing=signing, enciphering=enciphering), critical=True
            )
        certificate = builder.sign(self.ca_key, hashes.SHA256())
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        return base64.b64encode(pem).decode()
