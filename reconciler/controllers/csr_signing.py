"""The CSR signing controller: approved CertificateSigningRequests for the
`kubernetes.io/kube-apiserver-client` signer get their certificate, as
kube-controller-manager's `csrsigning` controller gives them.

A request is signed once: it must be Approved, not Denied or Failed, and have no
certificate yet. Usages that are not a client certificate's fail it instead (condition
Failed, reason `SignerValidationFailure`, upstream's message). The signing itself is the
API server's (`apiserver/csr_signer.py`, which holds the CA); this controller only decides
and writes `status` through the client. Other signers' requests are left for their own
signers, as upstream leaves them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.clock import Clock, rfc3339
from reconciler.controllers.base import Result, enqueue_self
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.queue import WorkQueue

__all__ = [
    "API_VERSION",
    "CLIENT_SIGNER",
    "KIND",
    "CsrController",
    "CsrSigningController",
    "signing_decision",
    "usage_refusal",
]

JSONDict = dict[str, Any]
Issue = Callable[[Mapping[str, Any], datetime], str]
"""(CSR spec, now) -> base64 of the PEM certificate."""

API_VERSION = "certificates.k8s.io/v1"
KIND = "CertificateSigningRequest"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
_CLIENT_USAGES = frozenset({"client auth", "digital signature", "key encipherment"})


def usage_refusal(usages: list[str]) -> str | None:
    """Why the usages are not a client certificate's (upstream's words), or None."""
    for usage in usages:
        if usage not in _CLIENT_USAGES:
            return f"invalid usage for client certificate: {usage}"
    if "client auth" not in usages:
        return "missing required usage for client certificate: client auth"
    return None


def signing_decision(csr: Mapping[str, Any]) -> str | None:
    """ "sign", "fail" or None (nothing to do) for a request. Pure."""
    spec = csr.get("spec") or {}
    status = csr.get("status") or {}
    if spec.get("signerName") != CLIENT_SIGNER or status.get("certificate"):
        return None
    held = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Approved" not in held or held & {"Denied", "Failed"}:
        return None
    if usage_refusal([str(u) for u in spec.get("usages") or []]) is not None:
        return "fail"
    return "sign"


class CsrController:
    """What the CSR controllers (this one, `csr_cleaner.py`) share: an informer on the
    requests, each queued by name when added or changed."""

    name = "csr"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.requests: Informer

    def setup(self, factory: InformerFactory) -> None:
        self.requests = factory.informer(API_VERSION, KIND)
        seen = enqueue_self(self.queue)
        self.requests.add_handlers(Handlers(seen, lambda _old, new: seen(new), None))


class CsrSigningController(CsrController):
    name = "csrsigning"

    def __init__(self, client: Client, clock: Clock, issue: Issue) -> None:
        super().__init__(client, clock)
        self.issue = issue

    async def reconcile(self, key: ObjKey) -> Result:
        csr = self.requests.get("", key[1])
        if csr is None:
            return Result()
        decision = signing_decision(csr)
        if decision is None:
            return Result()
        spec = csr.get("spec") or {}
        status: JSONDict
        if decision == "fail":
            now = rfc3339(self.clock.now())
            message = usage_refusal([str(u) for u in spec.get("usages") or []])
            failed = {
                "type": "Failed",
                "status": "True",
                "reason": "SignerValidationFailure",
                "message": message,
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            }
            conditions = (csr.get("status") or {}).get("conditions") or []
            status = {"conditions": [*conditions, failed]}
        else:
            try:
                status = {"certificate": self.issue(spec, self.clock.now())}
            except ValueError as exc:
                now = rfc3339(self.clock.now())
                conditions = (csr.get("status") or {}).get("conditions") or []
                status = {
                    "conditions": [
                        *conditions,
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "SignerValidationFailure",
                            "message": str(exc),
                            "lastUpdateTime": now,
                            "lastTransitionTime": now,
                        },
                    ]
                }
        try:
            await self.client.patch(
                API_VERSION, KIND, key[1], {"status": status}, subresource="status"
            )
        except NotFoundError:
            return Result()
        except ClientError as exc:
            return Result(error=str(exc))
        return Result()
