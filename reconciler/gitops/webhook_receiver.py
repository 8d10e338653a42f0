"""`POST /webhooks/{github|gitlab|gitea}`: a push refreshes the Applications that follow the
pushed repository at once instead of at their next interval.

The checks (rate limit, signature or token, payload, the bounded coalescing queue) are
`source.webhooks`; this module is the HTTP handler and the consumer of that queue. The
shared secrets live in a Secret the user creates, so they are managed like every other
credential (and never in a log line):

    kubectl -n default create secret generic recon-webhooks \\
        --from-literal=github=S1 --from-literal=gitlab=S2 --from-literal=gitea=S3

A provider without a key there is disabled (401).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging

from aiohttp import web

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.clock import Clock
from reconciler.gitops.manager import AppManager
from reconciler.source.webhooks import MAX_BODY_BYTES, WebhookLimiter, WebhookRejected, receive

__all__ = ["PATH", "SECRET_NAME", "SECRET_NAMESPACE", "WebhookReceiver"]

log = logging.getLogger(__name__)

PATH = "/webhooks"
SECRET_NAMESPACE, SECRET_NAME = "default", "recon-webhooks"


class WebhookReceiver:
    def __init__(self, client: Client, manager: AppManager, clock: Clock) -> None:
        self.client = client
        self.manager = manager
        self.limiter = WebhookLimiter(clock)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._refresh(), name="webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _secret(self, provider: str) -> bytes | None:
        try:
            secret = await self.client.get("v1", "Secret", SECRET_NAME, SECRET_NAMESPACE)
        except NotFoundError:
            return None
        value = (secret.get("data") or {}).get(provider)
        return base64.b64decode(value) if value else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        provider = request.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method != "POST":
            return web.Response(status=405, text="webhooks are POSTed")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return web.Response(status=413, text="the payload is too large")
        try:
            body = await request.content.read(MAX_BODY_BYTES + 1)
            secret = await self._secret(provider)
            result = receive(
                provider,
                request.headers,
                body,
                secret,
                client=request.remote or "",
                limiter=self.limiter,
            )
        except WebhookRejected as e:
            return web.Response(status=e.status, text=e.message, headers=e.headers())
        except ClientError as e:
            return web.Response(status=503, text=f"cannot read the webhook secrets: {e.message}")
        return web.Response(status=result.status, text=result.message)

    async def _refresh(self) -> None:
        while True:
            refresh = await self.limiter.take()
            matched = [key for key, url in self.manager.repo_urls().items() if refresh.matches(url)]
            for key in matched:
                self.manager.poke(key)
            log.info("webhook: refreshing %s (%s)", ", ".join(matched) or "nothing", refresh)
