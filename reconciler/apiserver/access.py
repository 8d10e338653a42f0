"""Admission of a request to the API: authenticate, impersonate, authorize — in that order,
as upstream's handler chain (`WithAuthentication` → `WithImpersonation` → `WithAuthorization`).

The admin's request (token of `system:masters`, no `Impersonate-*` header) costs one constant-
time comparison and no URL parsing: the RBAC path is only taken by other users.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from reconciler.apiserver.authn import MASTERS, Authenticator, certificate_user, impersonate
from reconciler.apiserver.authz import Authorizer, forbidden
from reconciler.apiserver.escalation import CURRENT_USER
from reconciler.apiserver.rbac import Attributes, UserInfo
from reconciler.apiserver.request_info import resolve
from reconciler.apiserver.sa_tokens import TokenSigner

__all__ = ["USER", "Access", "user_of"]

USER = web.RequestKey("recon.user", UserInfo)
"""Where the admitted user is kept on the request, for handlers that answer about it."""

_IMPERSONATE = "impersonate-"


def user_of(request: web.Request) -> UserInfo:
    user = request.get(USER)
    assert isinstance(user, UserInfo), "the request went around the access middleware"
    return user


@dataclass(frozen=True)
class Access:
    authenticator: Authenticator
    authorizer: Authorizer
    signer: TokenSigner

    def admit(self, request: web.Request, attrs: Attributes | None = None) -> UserInfo | None:
        """The user the request acts as, if it may do what it asks (None: not authenticated;
        a 403 `ApiError` when it may not). `attrs`: what the request asks, when the caller
        resolved it already."""
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        user = certificate_user(peer) or self.authenticator.authenticate(
            request.headers.get("Authorization", "")
        )
        if user is None:
            return None
        headers = request.headers
        if any(h[: len(_IMPERSONATE)].lower() == _IMPERSONATE for h in headers):
            user = impersonate(
                user,
                headers,
                lambda name: list(headers.getall(name, [])),
                self.authorizer.authorize,
                forbidden,
            )
        if MASTERS not in user.groups:
            attrs = attrs or resolve(request.method, request.path, request.query)
            if not self.authorizer.authorize(user, attrs).allowed:
                raise forbidden(user, attrs)
        request[USER] = user
        CURRENT_USER.set(user)  # for what checks the writer, not the request (escalation.py)
        return user
