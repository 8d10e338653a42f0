"""The token controller: Secrets of type `kubernetes.io/service-account-token` get a token.

As upstream's `serviceaccount-token` controller: a Secret of that type, annotated
`kubernetes.io/service-account.name`, is filled with `data.token` (a never-expiring JWT for
that ServiceAccount, signed by the API server's key), `data.ca.crt` (the CA that signs the
API server's certificate) and `data.namespace`, and is annotated with the account's uid.
Such a Secret whose ServiceAccount is gone, or was replaced by one with another uid, is
deleted (its token stopped authenticating anyway).

The signer is injected (`LegacySigner`): controllers reach the API through the client only,
and signing is not an API call. `plan` is pure; the controller applies its decision.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.client.base import Client
from reconciler.client.errors import NotFoundError
from reconciler.clock import Clock
from reconciler.controllers.base import Result
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.queue import WorkQueue

__all__ = [
    "ACCOUNT_NAME",
    "ACCOUNT_UID",
    "TOKEN_TYPE",
    "Delete",
    "Fill",
    "LegacySigner",
    "TokenSecretsController",
    "plan",
]

JSONDict = dict[str, Any]

TOKEN_TYPE = "kubernetes.io/service-account-token"
ACCOUNT_NAME = "kubernetes.io/service-account.name"
ACCOUNT_UID = "kubernetes.io/service-account.uid"


class LegacySigner(Protocol):
    def __call__(self, namespace: str, name: str, uid: str, secret: str) -> str: ...


@dataclass(frozen=True)
class Fill:
    """Write the missing token, CA and namespace, and the account's uid."""

    account_uid: str


@dataclass(frozen=True)
class Delete:
    reason: str


def _b64(text: bytes) -> str:
    return base64.b64encode(text).decode("ascii")


def plan(secret: JSONDict | None, account: JSONDict | None) -> Fill | Delete | None:
    """What to do with a token Secret, given its ServiceAccount as the API has it now."""
    if secret is None or secret.get("type") != TOKEN_TYPE:
        return None
    meta = secret.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    annotations = meta.get("annotations") or {}
    name = annotations.get(ACCOUNT_NAME)
    if not name:
        return None
    if account is None:
        return Delete(f"ServiceAccount {name!r} does not exist")
    uid = str((account.get("metadata") or {}).get("uid") or "")
    wanted = annotations.get(ACCOUNT_UID)
    if wanted and wanted != uid:
        return Delete(f"ServiceAccount {name!r} has uid {uid}, not {wanted}")
    data = secret.get("data") or {}
    if wanted and all(data.get(k) for k in ("token", "ca.crt", "namespace")):
        return None
    return Fill(uid)


class TokenSecretsController:
    name = "serviceaccount-token"

    def __init__(
        self, client: Client, clock: Clock, sign: LegacySigner, ca_bundle: Callable[[], bytes]
    ) -> None:
        self.client = client
        self.clock = clock
        self.sign = sign
        self.ca_bundle = ca_bundle
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.secrets: Informer
        self.accounts: Informer

    def setup(self, factory: InformerFactory) -> None:
        self.secrets = factory.informer("v1", "Secret")
        self.accounts = factory.informer("v1", "ServiceAccount")

        def secret(obj: JSONDict) -> None:
            if obj.get("type") == TOKEN_TYPE:
                meta = obj.get("metadata") or {}
                self.queue.add((str(meta.get("namespace") or ""), str(meta.get("name") or "")))

        def account(obj: JSONDict) -> None:
            meta = obj.get("metadata") or {}
            namespace, name = str(meta.get("namespace") or ""), meta.get("name")
            for candidate in self.secrets.list(namespace):
                annotations = (candidate.get("metadata") or {}).get("annotations") or {}
                if candidate.get("type") == TOKEN_TYPE and annotations.get(ACCOUNT_NAME) == name:
                    secret(candidate)

        self.secrets.add_handlers(Handlers(secret, lambda _o, n: secret(n), None))
        self.accounts.add_handlers(Handlers(account, lambda _o, n: account(n), account))

    async def _account(self, namespace: str, name: str) -> JSONDict | None:
        """The ServiceAccount as the API has it now: the cache may not have seen one created
        a moment before its Secret, and deleting a Secret on a stale cache is not undone."""
        cached = self.accounts.get(namespace, name)
        if cached is not None:
            return cached
        try:
            return await self.client.get("v1", "ServiceAccount", name, namespace)
        except NotFoundError:
            return None

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        secret = self.secrets.get(namespace, name)
        annotations = ((secret or {}).get("metadata") or {}).get("annotations") or {}
        account_name = str(annotations.get(ACCOUNT_NAME) or "")
        account = await self._account(namespace, account_name) if account_name else None
        decision = plan(secret, account)
        if decision is None or secret is None:
            return Result()
        if isinstance(decision, Delete):
            with contextlib.suppress(NotFoundError):
                await self.client.delete("v1", "Secret", name, namespace)
            return Result()
        data = dict(secret.get("data") or {})
        if not data.get("token"):
            token = self.sign(namespace, account_name, decision.account_uid, name)
            data["token"] = _b64(token.encode())
        data.setdefault("ca.crt", _b64(self.ca_bundle()))
        data.setdefault("namespace", _b64(namespace.encode()))
        patch = {
            "metadata": {
                "annotations": {ACCOUNT_UID: decision.account_uid},
                "resourceVersion": secret["metadata"].get("resourceVersion"),
            },
            "data": data,
        }
        with contextlib.suppress(NotFoundError):
            await self.client.patch("v1", "Secret", name, patch, namespace=namespace)
        return Result()
