"""ServiceAccount tokens: JWTs this server signs, and checks when they come back.

Two kinds, as upstream issues them:

- **bound tokens** (`serviceaccounts/NAME/token`, `kubectl create token`): audiences, an
  expiry, and the ServiceAccount (and optionally the Pod or Secret they are bound to) by
  name and uid in the `kubernetes.io` claim;
- **legacy tokens** (Secrets of type `kubernetes.io/service-account-token`, filled by the
  token controller): no expiry, the old flat `kubernetes.io/serviceaccount/...` claims.

They are signed ES256 with one P-256 key, `DATA_DIR/pki/sa.key` (mode 0600), created on
first start and kept, so tokens survive restarts. This module only signs and verifies
signatures, times and audiences; whether the ServiceAccount (or bound object, or Secret)
still exists with the same uid is checked by `authn.py` against the store.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from reconciler.apiserver.pki import write_private

__all__ = [
    "API_AUDIENCES",
    "ISSUER",
    "LEGACY_ISSUER",
    "BoundObject",
    "TokenClaims",
    "TokenSigner",
    "load_or_create_key",
]

JSONDict = dict[str, Any]

ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
# What this API server accepts as its own audience (upstream's default `--api-audiences`
# is the issuer); a token for another audience is for someone else.
API_AUDIENCES = (ISSUER,)
_LEGACY = "kubernetes.io/serviceaccount/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The signing key at `path`; created (mode 0600) the first time."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: the service-account key must be an EC P-256 key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, pem)
    return key


@dataclass(frozen=True)
class BoundObject:
    """The Pod or Secret (upstream also allows a Node) a bound token dies with."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class TokenClaims:
    """A verified token's identity: what authentication checks against the store."""

    namespace: str
    service_account: str
    service_account_uid: str
    bound: BoundObject | None = None
    legacy_secret: str = ""  # the Secret a legacy token came from
    expires: int | None = None
    audiences: tuple[str, ...] = ()  # of those asked for, the ones the token is for


class TokenSigner:
    """Signs and verifies this server's ServiceAccount JWTs."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # As upstream: the key id is the hash of the public key.
        self.key_id = _b64(hashlib.sha256(public).digest())

    def _sign(self, claims: JSONDict) -> str:
        header = {"alg": "ES256", "kid": self.key_id}
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        )
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def issue(
        self,
        namespace: str,
        name: str,
        uid: str,
        audiences: list[str],
        now: datetime,
        expiration_seconds: int,
        bound: BoundObject | None = None,
    ) -> tuple[str, int]:
        """A bound token and its expiry (epoch seconds)."""
        issued = int(now.timestamp())
        expires = issued + expiration_seconds
        private: JSONDict = {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": uid},
        }
        if bound is not None:
            private[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        claims = {
            "aud": audiences,
            "exp": expires,
            "iat": issued,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": issued,
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        return self._sign(claims), expires

    def issue_legacy(self, namespace: str, name: str, uid: str, secret: str) -> str:
        """A never-expiring token for a `kubernetes.io/service-account-token` Secret."""
        return self._sign(
            {
                "iss": LEGACY_ISSUER,
                f"{_LEGACY}namespace": namespace,
                f"{_LEGACY}secret.name": secret,
                f"{_LEGACY}service-account.name": name,
                f"{_LEGACY}service-account.uid": uid,
                "sub": f"system:serviceaccount:{namespace}:{name}",
            }
        )

    def verify(
        self, token: str, now: datetime, audiences: Sequence[str] = API_AUDIENCES
    ) -> TokenClaims | None:
        """The claims of a token this signer issued that is valid at `now` for one of
        `audiences` (the API's own unless a TokenReview asks for others), else None."""
        pieces = token.split(".")
        if len(pieces) != 3:
            return None
        try:
            header = json.loads(_unb64(pieces[0]))
            claims = json.loads(_unb64(pieces[1]))
            raw = _unb64(pieces[2])
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(header, dict) or header.get("alg") != "ES256" or len(raw) != 64:
            return None
        signature = encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )
        try:
            self._key.public_key().verify(
                signature, f"{pieces[0]}.{pieces[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return None
        if not isinstance(claims, dict):
            return None
        if claims.get("iss") == LEGACY_ISSUER:
            legacy = _legacy_claims(claims)
            if legacy is None or not set(audiences) & set(API_AUDIENCES):
                return None  # a legacy token is for the API alone
            return replace(legacy, audiences=tuple(a for a in audiences if a in API_AUDIENCES))
        return _bound_claims(claims, int(now.timestamp()), audiences)


def _bound_claims(claims: JSONDict, now: int, wanted: Sequence[str]) -> TokenClaims | None:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if claims.get("iss") != ISSUER or not isinstance(exp, int) or now >= exp:
        return None
    if isinstance(nbf, int) and now < nbf:
        return None
    audiences = claims.get("aud")
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or not set(audiences) & set(wanted):
        return None
    private = claims.get("kubernetes.io")
    if not isinstance(private, dict):
        return None
    account = private.get("serviceaccount") or {}
    bound = None
    for kind in ("Pod", "Secret"):
        ref = private.get(kind.lower())
        if isinstance(ref, dict):
            bound = BoundObject(kind, str(ref.get("name") or ""), str(ref.get("uid") or ""))
    return TokenClaims(
        namespace=str(private.get("namespace") or ""),
        service_account=str(account.get("name") or ""),
        service_account_uid=str(account.get("uid") or ""),
        bound=bound,
        expires=exp,
        audiences=tuple(a for a in wanted if a in audiences),
    )


def _legacy_claims(claims: JSONDict) -> TokenClaims | None:
    namespace = claims.get(f"{_LEGACY}namespace")
    name = claims.get(f"{_LEGACY}service-account.name")
    secret = claims.get(f"{_LEGACY}secret.name")
    if not (isinstance(namespace, str) and isinstance(name, str) and isinstance(secret, str)):
        return None
    return TokenClaims(
        namespace=namespace,
        service_account=name,
        service_account_uid=str(claims.get(f"{_LEGACY}service-account.uid") or ""),
        legacy_secret=secret,
    )
