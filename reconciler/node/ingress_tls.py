"""Certificates for the ingress's HTTPS listener: one TLS context per `kubernetes.io/tls`
Secret, picked by SNI, and a self-signed fallback.

A host whose Secret is missing or unusable gets the fallback ("Recon Ingress Fake
Certificate", as ingress-nginx serves its fake one), so one bad Secret never takes the
listener down; the reason is reported on the Ingress by the caller.

Python's `ssl` loads keys only from files: the PEM pair is written to a private file on a
tmpfs (`/dev/shm` when present) and unlinked as soon as it is loaded, so a Secret's key
never reaches a disk.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["CertificateError", "Certificates", "self_signed"]

JSONDict = dict[str, Any]

_TMPFS = Path("/dev/shm")
FAKE_NAME = "Recon Ingress Fake Certificate"


class CertificateError(ValueError):
    """A Secret that cannot serve as a certificate; the message says why."""


def _context_from_pem(pem: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.set_alpn_protocols(["http/1.1"])
    directory = _TMPFS if _TMPFS.is_dir() else None
    fd, name = tempfile.mkstemp(prefix="recon-ingress-", suffix=".pem", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        context.load_cert_chain(name)
    finally:
        os.unlink(name)
    return context


def self_signed(common_name: str, dns_names: list[str]) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a fresh self-signed EC certificate valid for a year:
    the fallback certificate, and what tests make a `kubernetes.io/tls` Secret from."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _secret_pem(secret: JSONDict) -> bytes:
    meta = secret.get("metadata") or {}
    where = f'secret "{meta.get("namespace")}/{meta.get("name")}"'
    data = secret.get("data") or {}
    parts: list[bytes] = []
    for field in ("tls.crt", "tls.key"):
        value = data.get(field)
        if not value:
            raise CertificateError(f"{where} has no data[{field}]")
        try:
            parts.append(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise CertificateError(f"{where}: data[{field}] is not base64: {exc}") from exc
    return parts[0].rstrip(b"\n") + b"\n" + parts[1]


class Certificates:
    """TLS contexts by Secret, made once per Secret version."""

    def __init__(self) -> None:
        cert, key = self_signed(FAKE_NAME, ["ingress.local"])
        self.fallback = _context_from_pem(cert + key)
        self._by_secret: dict[tuple[str, str], tuple[str, ssl.SSLContext]] = {}

    def context_for(self, secret: JSONDict) -> ssl.SSLContext:
        """The Secret's certificate and key as a server context; CertificateError when
        they do not make one."""
        meta = secret.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = f"{meta.get('uid')}/{meta.get('resourceVersion')}"
        cached = self._by_secret.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            context = _context_from_pem(_secret_pem(secret))
        except ssl.SSLError as exc:
            where = f'secret "{key[0]}/{key[1]}"'
            raise CertificateError(f"{where}: tls.crt and tls.key do not load: {exc}") from exc
        self._by_secret[key] = (version, context)
        return context

    def forget_except(self, keep: set[tuple[str, str]]) -> None:
        for key in set(self._by_secret) - keep:
            del self._by_secret[key]
