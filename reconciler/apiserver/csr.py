"""CertificateSigningRequests as the API server keeps them: who asked, what may change, who
may approve. Pure.

The usual way to give a person access to a cluster: they make a key and a certificate
request, `kubectl apply` it as a CSR for the `kubernetes.io/kube-apiserver-client` signer,
an admin runs `kubectl certificate approve`, the signer (`controllers/csr_signing.py`)
puts the certificate in `status.certificate`, and their kubeconfig presents it. Upstream's
rules, kept here:

- on create the API records who asked (`spec.username`, `uid`, `groups`, `extra`: the
  requester, whatever the request said) and drops any status;
- `spec.request` must be a PEM `CERTIFICATE REQUEST` whose signature verifies; `signerName`
  and `usages` are required; `expirationSeconds` is at least 600;
- the spec never changes after create;
- `/approval` changes only the Approved and Denied conditions: one of them, never both,
  and neither is taken back; approving needs `approve` on `signers` for the signer's name
  (or `<domain>/*`) besides the update itself (the `CertificateApproval` plugin);
- `/status` changes the certificate and the other conditions, never Approved or Denied;
  once issued, the certificate stays.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from reconciler.apiserver.rbac import Attributes, UserInfo
from reconciler.schema.metadata import Cause

__all__ = [
    "APPROVAL_CONDITIONS",
    "approval_attributes",
    "approval_update",
    "prepare_create",
    "spec_causes",
    "status_update",
]

JSONDict = dict[str, Any]

APPROVAL_CONDITIONS = ("Approved", "Denied")
KNOWN_USAGES = frozenset(
    {
        "signing",
        "digital signature",
        "content commitment",
        "key encipherment",
        "key agreement",
        "data encipherment",
        "cert sign",
        "crl sign",
        "encipher only",
        "decipher only",
        "any",
        "server auth",
        "client auth",
        "code signing",
        "email protection",
        "s/mime",
        "ipsec end system",
        "ipsec tunnel",
        "ipsec user",
        "timestamping",
        "ocsp signing",
        "microsoft sgc",
        "netscape sgc",
    }
)
_SIGNER = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def prepare_create(obj: JSONDict, user: UserInfo | None) -> None:
    """Record the requester (`user`; None: an in-process write, which says it itself) and
    drop the status."""
    obj.pop("status", None)
    if user is None:
        return
    spec = obj.setdefault("spec", {})
    spec["username"] = user.name
    if user.uid:
        spec["uid"] = user.uid
    else:
        spec.pop("uid", None)
    spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}
    else:
        spec.pop("extra", None)


def parse_request(spec: Mapping[str, Any]) -> x509.CertificateSigningRequest:
    """The certificate request in `spec.request` (base64 of PEM); ValueError when it is not
    one, or its signature does not verify."""
    raw = spec.get("request")
    if not isinstance(raw, str) or not raw:
        raise ValueError("Required value")
    try:
        pem = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be base64 of a PEM-encoded certificate request") from exc
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        request = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise ValueError(f"invalid certificate request: {exc}") from exc
    try:
        if not request.is_signature_valid:
            raise ValueError("invalid certificate request: the signature does not verify")
    except InvalidSignature as exc:
        raise ValueError("invalid certificate request: the signature does not verify") from exc
    return request


def spec_causes(obj: Mapping[str, Any]) -> list[Cause]:
    """What makes a new CSR invalid, in upstream's words."""
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    try:
        parse_request(spec)
    except ValueError as exc:
        if str(exc) == "Required value":
            causes.append(Cause("spec.request", "Required value", "FieldValueRequired"))
        else:
            causes.append(
                Cause("spec.request", f"Invalid value: []byte{{...}}: {exc}", "FieldValueInvalid")
            )
    signer = spec.get("signerName")
    if not signer:
        causes.append(Cause("spec.signerName", "Required value", "FieldValueRequired"))
    elif not isinstance(signer, str) or not _SIGNER.match(signer):
        causes.append(
            Cause(
                "spec.signerName",
                f'Invalid value: "{signer}": must be a fully qualified domain and path of '
                "the form 'example.com/signer-name'",
                "FieldValueInvalid",
            )
        )
    usages = spec.get("usages")
    if not usages:
        causes.append(Cause("spec.usages", "Required value", "FieldValueRequired"))
    else:
        seen: set[str] = set()
        for i, usage in enumerate(usages):
            if usage not in KNOWN_USAGES:
                causes.append(
                    Cause(
                        f"spec.usages[{i}]",
                        f'Unsupported value: "{usage}"',
                        "FieldValueNotSupported",
                    )
                )
            elif usage in seen:
                causes.append(
                    Cause(f"spec.usages[{i}]", f'Duplicate value: "{usage}"', "FieldValueDuplicate")
                )
            seen.add(str(usage))
    seconds = spec.get("expirationSeconds")
    if seconds is not None and (not isinstance(seconds, int) or seconds < 600):
        causes.append(
            Cause(
                "spec.expirationSeconds",
                f"Invalid value: {seconds}: may not specify a duration less than 600 seconds "
                "(10 minutes)",
                "FieldValueInvalid",
            )
        )
    return causes


def _conditions(obj: Mapping[str, Any]) -> list[JSONDict]:
    return [dict(c) for c in (obj.get("status") or {}).get("conditions") or []]


def _approval_causes(old: Sequence[JSONDict], new: Sequence[JSONDict]) -> list[Cause]:
    causes: list[Cause] = []
    types = [c.get("type") for c in new]
    if "Approved" in types and "Denied" in types:
        causes.append(
            Cause(
                "status.conditions",
                "Invalid value: ...: Approved and Denied conditions are mutually exclusive",
                "FieldValueInvalid",
            )
        )
    for i, condition in enumerate(new):
        if condition.get("type") in APPROVAL_CONDITIONS and condition.get("status") != "True":
            causes.append(
                Cause(
                    f"status.conditions[{i}].status",
                    f'Unsupported value: "{condition.get("status")}": supported values: "True"',
                    "FieldValueNotSupported",
                )
            )
    for condition in old:
        kind = condition.get("type")
        if kind in APPROVAL_CONDITIONS and kind not in types:
            causes.append(
                Cause(
                    "status.conditions",
                    f"Forbidden: updates may not remove a condition of type {kind!r}",
                    "FieldValueForbidden",
                )
            )
    return causes


def approval_update(old: JSONDict, new: Mapping[str, Any]) -> tuple[JSONDict, list[Cause]]:
    """The CSR after a write to `/approval`: `old` with the conditions `new` sets (only
    Approved and Denied may change), and what is wrong with it."""
    wanted = _conditions(new)
    kept = [c for c in _conditions(old) if c.get("type") not in APPROVAL_CONDITIONS]
    approvals = [c for c in wanted if c.get("type") in APPROVAL_CONDITIONS]
    causes = _approval_causes(
        [c for c in _conditions(old) if c.get("type") in APPROVAL_CONDITIONS], approvals
    )
    result = dict(old)
    status = dict(old.get("status") or {})
    status["conditions"] = [*approvals, *kept]
    result["status"] = status
    return result, causes


def status_update(old: JSONDict, new: Mapping[str, Any]) -> tuple[JSONDict, list[Cause]]:
    """The CSR after a write to `/status`: the certificate and conditions from `new`,
    the approval conditions as they were; an issued certificate cannot change."""
    approvals = [c for c in _conditions(old) if c.get("type") in APPROVAL_CONDITIONS]
    others = [c for c in _conditions(new) if c.get("type") not in APPROVAL_CONDITIONS]
    status = dict(new.get("status") or {})
    status["conditions"] = [*approvals, *others]
    if not status["conditions"]:
        del status["conditions"]
    causes: list[Cause] = []
    issued = (old.get("status") or {}).get("certificate")
    if issued and status.get("certificate") != issued:
        causes.append(
            Cause(
                "status.certificate",
                "Forbidden: updates may not modify existing certificate content",
                "FieldValueForbidden",
            )
        )
    certificate = status.get("certificate")
    if certificate and not issued:
        try:
            pem = base64.b64decode(str(certificate), validate=True)
            x509.load_pem_x509_certificates(pem)
        except (binascii.Error, ValueError):
            causes.append(
                Cause(
                    "status.certificate",
                    'Invalid value: "<certificate data>": must contain at least one '
                    "CERTIFICATE PEM block",
                    "FieldValueInvalid",
                )
            )
    result = dict(old)
    result["status"] = status
    return result, causes


def newly_approved(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a write adds the Approved condition (what needs `approve` on the signer)."""
    had = {c.get("type") for c in _conditions(old)}
    return "Approved" not in had and "Approved" in {c.get("type") for c in _conditions(new)}


def approval_attributes(signer: str) -> list[Attributes]:
    """What approving for `signer` may be granted as: the signer's name, or its domain's
    wildcard (`example.com/*`)."""
    domain = signer.split("/", 1)[0]
    return [
        Attributes(
            verb="approve",
            api_group="certificates.k8s.io",
            resource="signers",
            name=name,
        )
        for name in (signer, f"{domain}/*")
    ]
