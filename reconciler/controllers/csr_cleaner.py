"""The CSR cleaner: CertificateSigningRequests are not kept forever, as kube-controller-
manager's `csrcleaner` does not keep them.

A request goes (upstream's deadlines):
- an hour after it was approved, denied or failed (the condition's `lastUpdateTime`, or
  its `lastTransitionTime` when a client left the former out) — its certificate, if any,
  has been handed out by then;
- a day after it was created while still pending;
- as soon as the certificate it was issued has expired.

Instead of upstream's hourly poll, each request is looked at again when its next
deadline comes (the work queue's timer), so nothing is listed in between.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from reconciler.client.errors import NotFoundError
from reconciler.clock import maybe_rfc3339
from reconciler.controllers.base import Result
from reconciler.controllers.csr_signing import API_VERSION, KIND, CsrController
from reconciler.controllers.informer import ObjKey

__all__ = ["CsrCleaner", "removal_time"]

DECIDED_EXPIRATION = timedelta(hours=1)
PENDING_EXPIRATION = timedelta(hours=24)
_DECIDED = ("Approved", "Denied", "Failed")


def _certificate_expiry(status: Mapping[str, Any]) -> datetime | None:
    encoded = status.get("certificate")
    if not encoded:
        return None
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(str(encoded)))
    except ValueError:
        return None
    return cert.not_valid_after_utc


def removal_time(csr: Mapping[str, Any]) -> datetime | None:
    """When the request is to be deleted (None: never, as it carries no time to go by). Pure."""
    status = csr.get("status") or {}
    times: list[datetime] = []
    decided = False
    for cond in status.get("conditions") or []:
        if cond.get("type") not in _DECIDED or cond.get("status", "True") != "True":
            continue
        decided = True
        updated, moved = cond.get("lastUpdateTime"), cond.get("lastTransitionTime")
        when = maybe_rfc3339(updated) or maybe_rfc3339(moved)
        if when is not None:
            times.append(when + DECIDED_EXPIRATION)
    if not decided:
        created = maybe_rfc3339((csr.get("metadata") or {}).get("creationTimestamp"))
        if created is not None:
            times.append(created + PENDING_EXPIRATION)
    expiry = _certificate_expiry(status)
    if expiry is not None:
        times.append(expiry)
    return min(times, default=None)


class CsrCleaner(CsrController):
    name = "csrcleaner"

    async def reconcile(self, key: ObjKey) -> Result:
        csr = self.requests.get("", key[1])
        if csr is None:
            return Result()
        due = removal_time(csr)
        if due is None:
            return Result()
        left = (due - self.clock.now()).total_seconds()
        if left > 0:
            return Result(requeue_after=left)
        with contextlib.suppress(NotFoundError):
            await self.client.delete(API_VERSION, KIND, key[1])
        return Result()
