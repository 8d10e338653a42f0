"""ServiceAccount tokens for pods' projected `serviceAccountToken` volume sources, as the
kubelet's token manager keeps them.

Each (pod, audience, lifetime) gets a token bound to the pod from the injected issuer (in
`recon serve`, the API server's signer: the same tokens `kubectl create token --bound-
object-kind Pod` gives), reused until 80 % of its life has passed, then replaced; the node
agent rewrites the volume's files on its periodic refresh, so a long-running pod always
holds a valid token. A pod's tokens are forgotten with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.clock import Clock

__all__ = ["PodTokens", "TokenIssuer", "TokenUnavailableError"]

JSONDict = dict[str, Any]

TokenIssuer = Callable[[JSONDict, str | None, int], tuple[str, float]]
"""(pod, audience or None for the API's own, lifetime in seconds) -> (token, expiry as
epoch seconds); raises TokenUnavailableError (e.g. the ServiceAccount does not exist)."""

MIN_SECONDS = 600  # upstream's minimum expirationSeconds
REFRESH_AT = 0.8  # of a token's life, as the kubelet


class TokenUnavailableError(Exception):
    """No token can be had for the pod now; the message says why."""


class PodTokens:
    def __init__(self, issue: TokenIssuer, clock: Clock) -> None:
        self._issue = issue
        self._clock = clock
        # (pod uid, audience, seconds) -> (token, when to replace it, as epoch seconds)
        self._tokens: dict[tuple[str, str | None, int], tuple[str, float]] = {}

    def token(self, pod: JSONDict, audience: str | None, seconds: int) -> str:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        seconds = max(int(seconds), MIN_SECONDS)
        key = (uid, audience, seconds)
        now = self._clock.now().timestamp()
        found = self._tokens.get(key)
        if found is not None and now < found[1]:
            return found[0]
        token, expires = self._issue(pod, audience, seconds)
        self._tokens[key] = (token, now + (expires - now) * REFRESH_AT)
        return token

    def due(self, pod_uid: str) -> bool:
        """Whether one of the pod's tokens is to be replaced now (its files rewritten)."""
        now = self._clock.now().timestamp()
        return any(uid == pod_uid and now >= at for (uid, _, _), (_, at) in self._tokens.items())

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self._tokens if k[0] == pod_uid]:
            del self._tokens[key]
