"""Webhooks from GitHub, GitLab and Gitea: who sent it, which repository moved, refresh it.

Where it sits in the flow: `POST /webhooks/{github|gitlab|gitea}` on the server calls
`receive` (or its parts in this order: `WebhookLimiter.admit` → `verify` → `parse_push` →
`WebhookLimiter.offer`); the GitOps scheduler drains the limiter's queue (`take`) and
refreshes every Application whose repoURL `Refresh.matches`. A webhook only makes a refresh
*earlier*: the interval poll stays the source of truth, so a webhook dropped here (rate
limited, queue full, provider down) delays a sync by at most one interval and never loses it.
That is why every limit below refuses rather than waits.

Decisions, and why:
- **Signatures and tokens are compared in constant time** (`hmac.compare_digest`), and the
  GitLab token is hashed before comparing so not even its length leaks.
- **No secret, no webhook.** An empty secret disables the provider's endpoint (401). Argo CD
  accepts unsigned webhooks when no secret is set; anyone who can reach the server could
  then trigger refreshes, which nobody means to allow.
- **Nothing secret is ever echoed.** `WebhookRejected.message` says what was wrong, never
  what was received: no secret, signature or token appears in a message or a
  log line. Repository keys (`normalize_repo_url`) carry no credentials by construction.
- **Bounded memory under a flood.** Rate-limit buckets live in an LRU table of fixed size;
  the refresh queue holds at most `queue_size` repositories and coalesces a repository that
  is already waiting, so a thousand pushes to one repo cause one refresh, not a thousand.
- **Pure where possible.** `verify`, `parse_push` and `normalize_repo_url` (except that a
  `file://` path is resolved on disk) have no side effects; only the limiter holds state,
  and it reads time from the injected `Clock`.

Errors: one class, `WebhookRejected(status, message)`; the HTTP handler maps it 1:1 to a
response (404 unknown provider, 401 bad or missing signature/token or disabled, 400
malformed payload, 413 body too large, 429 rate limited, 503 refresh queue full).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from reconciler.clock import Clock

__all__ = [
    "MAX_BODY_BYTES",
    "PROVIDERS",
    "Provider",
    "PushEvent",
    "Received",
    "Refresh",
    "WebhookLimiter",
    "WebhookRejected",
    "normalize_repo_url",
    "parse_push",
    "provider_of",
    "receive",
    "same_repo",
    "verify",
]

log = logging.getLogger(__name__)

Provider = Literal["github", "gitlab", "gitea"]
PROVIDERS: Final[tuple[Provider, ...]] = ("github", "gitlab", "gitea")
_DISPLAY: Final[dict[Provider, str]] = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea"}

# The largest body accepted. GitHub caps deliveries at 25 MB, but a push payload lists at
# most 20 commits; 8 MiB is generous for that and small enough to hash on the event loop.
# The server should also pass it as aiohttp's `client_max_size` so a larger body is never read.
MAX_BODY_BYTES: Final = 8 * 1024 * 1024

# Payload strings longer than this are ignored (no real URL or ref is this long), so one
# malicious-but-signed payload cannot make the queue hold megabytes.
_MAX_TEXT: Final = 2048
# A queued repository keeps at most this many keys (the URLs it was named by, normalised).
_MAX_KEYS_PER_REFRESH: Final = 16

_HEX_SHA256: Final = re.compile(r"[0-9a-fA-F]{64}")
_COMMIT: Final = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# scp-like git syntax, `[user@]host:path`, the form of `git@github.com:org/app.git`.
_SCP: Final = re.compile(
    r"(?:[^@/:]+@)?(?:\[(?P<ipv6>[^\]/]+)\]|(?P<host>[^@/:\[\]]+)):(?P<path>.*)"
)


class WebhookRejected(Exception):
    """A webhook request refused, with the HTTP status to answer and a message safe to show.

    The handler answers `status` with `message` as the body and `headers()` (Retry-After
    for 429 and 503). The message says what was wrong and what to do, never what was
    received, so it can be logged and returned to the sender as it is.
    """

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Response headers: `Retry-After` in whole seconds (at least 1) when known."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}

    def __repr__(self) -> str:
        return f"WebhookRejected({self.status}, {self.message!r})"


def provider_of(name: str) -> Provider:
    """The provider a URL path segment names; anything else is a 404, as for any unknown path."""
    for provider in PROVIDERS:
        if name == provider:
            return provider
    raise WebhookRejected(
        404, f"no webhook endpoint {_printable(name, 40)!r}: use github, gitlab or gitea"
    )


# --- signatures -------------------------------------------------------------------------


def verify(
    provider: str, headers: Mapping[str, str], body: bytes, secret: str | bytes | None
) -> None:
    """Check that `body` was sent by whoever holds `secret`; raise `WebhookRejected` if not.

    GitHub signs the raw body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`. Gitea sends
    `X-Gitea-Signature: <hex>` and, since 1.19, the GitHub header too; either is accepted
    (the Gitea one first). GitLab does not sign: it sends the secret itself in
    `X-Gitlab-Token`. `headers` may be aiohttp's case-insensitive headers or a plain dict.
    """
    which = provider_of(provider)
    name = _DISPLAY[which]
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected(413, f"{name} webhook body is larger than {MAX_BODY_BYTES} bytes")
    if not secret:
        raise WebhookRejected(
            401,
            f"{name} webhooks are disabled: the Recon server has no secret for them; configure "
            f"one there and set the same secret on the webhook in {name}",
        )
    key = secret.encode() if isinstance(secret, str) else secret
    if which == "gitlab":
        _check_token(name, _header(headers, "X-Gitlab-Token"), key)
        return
    candidates = [("X-Hub-Signature-256", "sha256=")]
    if which == "gitea":
        candidates.insert(0, ("X-Gitea-Signature", ""))
    _check_signature(name, headers, body, key, candidates)


def _check_signature(
    name: str,
    headers: Mapping[str, str],
    body: bytes,
    key: bytes,
    candidates: list[tuple[str, str]],
) -> None:
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    for header, prefix in candidates:
        value = _header(headers, header)
        if value is None:
            continue
        value = value.strip()
        digest = value[len(prefix) :]
        # Checked to be hex first: compare_digest refuses non-ASCII str, and a wrong format
        # is worth its own message ("is your webhook set to SHA-1?").
        if not value.startswith(prefix) or not _HEX_SHA256.fullmatch(digest):
            raise WebhookRejected(
                401, f"{name} webhook rejected: {header} is not {prefix}<64 hex digits>"
            )
        if not hmac.compare_digest(expected, digest.lower()):
            raise WebhookRejected(
                401,
                f"{name} webhook rejected: the signature in {header} does not match the body; "
                f"the webhook's secret in {name} differs from the Recon server's",
            )
        return
    raise WebhookRejected(
        401,
        f"{name} webhook rejected: no {' or '.join(h for h, _ in candidates)} header; set a "
        f"secret on the webhook in {name}, the same as the Recon server's",
    )


def _check_token(name: str, token: str | None, key: bytes) -> None:
    if token is None:
        raise WebhookRejected(
            401,
            f"{name} webhook rejected: no X-Gitlab-Token header; set the webhook's secret "
            f"token in {name} to the Recon server's secret",
        )
    # compare_digest is constant-time only between equal lengths: comparing fixed-size
    # digests keeps the secret's length private too.
    given = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    if not hmac.compare_digest(given, hashlib.sha256(key).digest()):
        raise WebhookRejected(
            401,
            f"{name} webhook rejected: X-Gitlab-Token does not match; the webhook's secret "
            f"token in {name} differs from the Recon server's",
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup: aiohttp's headers are already, a plain dict in a test is not."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _printable(text: str, limit: int) -> str:
    """`text` cut to `limit` and stripped of control characters, so it cannot forge log lines."""
    return "".join(char for char in text[:limit] if char.isprintable())


# --- payloads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """Where one provider puts what a push event says."""

    event_headers: tuple[str, ...]
    push_events: frozenset[str]
    delivery_header: str
    url_fields: tuple[tuple[str, str], ...]


_SHAPES: Final[dict[Provider, _Shape]] = {
    "github": _Shape(
        event_headers=("X-GitHub-Event",),
        push_events=frozenset({"push"}),
        delivery_header="X-GitHub-Delivery",
        url_fields=(
            ("repository", "clone_url"),
            ("repository", "html_url"),
            ("repository", "ssh_url"),
            ("repository", "git_url"),
        ),
    ),
    "gitlab": _Shape(
        event_headers=("X-Gitlab-Event",),
        # A system hook carries pushes of every project; `object_kind` says which it is.
        push_events=frozenset({"Push Hook", "Tag Push Hook", "System Hook"}),
        delivery_header="X-Gitlab-Event-UUID",
        url_fields=(
            ("project", "git_http_url"),
            ("project", "git_ssh_url"),
            ("project", "web_url"),
            ("repository", "git_http_url"),
            ("repository", "git_ssh_url"),
            ("repository", "homepage"),
            ("repository", "url"),
        ),
    ),
    "gitea": _Shape(
        event_headers=("X-Gitea-Event", "X-Gogs-Event"),
        push_events=frozenset({"push"}),
        delivery_header="X-Gitea-Delivery",
        url_fields=(
            ("repository", "clone_url"),
            ("repository", "ssh_url"),
            ("repository", "html_url"),
        ),
    ),
}


@dataclass(frozen=True)
class PushEvent:
    """What one webhook delivery says: which repository moved, to which commit.

    `repo_urls` are every URL the payload names the repository by (clone, SSH, web), in the
    payload's order, so an Application matches whichever form its repoURL uses. An event
    that is not a push (GitHub's `ping`, issues, ...) has `push` False and needs no refresh.
    """

    provider: Provider
    event: str
    push: bool = False
    repo_urls: tuple[str, ...] = ()
    ref: str | None = None
    after: str | None = None
    delivery: str | None = None

    @property
    def refresh_needed(self) -> bool:
        return self.push and bool(self.repo_urls)

    @property
    def deleted(self) -> bool:
        """The push deleted `ref` (the after-SHA is all zeros); a refresh shows the loss."""
        return self.after is not None and not self.after.strip("0")

    def matches(self, repo_url: str) -> bool:
        """Whether an Application following `repo_url` follows the repository pushed to."""
        key = normalize_repo_url(repo_url)
        return bool(key) and any(normalize_repo_url(url) == key for url in self.repo_urls)


def parse_push(provider: str, headers: Mapping[str, str], body: bytes) -> PushEvent:
    """Read a (verified) delivery into a `PushEvent`; a malformed push payload is a 400.

    Only pushes are decoded: other events are answered without reading the body, since
    nothing is refreshed for them. Bodies may be JSON or, as GitHub and Gitea offer,
    `application/x-www-form-urlencoded` with the JSON in the `payload` field.
    """
    which = provider_of(provider)
    name = _DISPLAY[which]
    shape = _SHAPES[which]
    event = next(
        (value for h in shape.event_headers if (value := _header(headers, h)) is not None), None
    )
    if event is None:
        raise WebhookRejected(
            400, f"no {shape.event_headers[0]} header: this is not a {name} webhook delivery"
        )
    event = _printable(event.strip(), 100)
    delivery_header = _header(headers, shape.delivery_header)
    delivery = _printable(delivery_header, 100) if delivery_header else None
    if event not in shape.push_events:
        return PushEvent(which, event, delivery=delivery)
    payload = _decode(name, headers, body)
    if event == "System Hook" and payload.get("object_kind") not in ("push", "tag_push"):
        return PushEvent(which, event, delivery=delivery)
    urls: list[str] = []
    for section, key in shape.url_fields:
        url = _text(payload, section, key)
        if url is not None and url not in urls:
            urls.append(url)
    if not urls:
        raise WebhookRejected(400, f"{name} push payload names no repository URL")
    ref = _text(payload, "ref")
    after = _text(payload, "after")
    return PushEvent(
        provider=which,
        event=event,
        push=True,
        repo_urls=tuple(urls),
        ref=_printable(ref, _MAX_TEXT) if ref else None,
        after=after if after is not None and _COMMIT.fullmatch(after) else None,
        delivery=delivery,
    )


def _decode(name: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    try:
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8"), max_num_fields=32)
            text = form.get("payload", [""])[0]
            if not text:
                raise WebhookRejected(400, f"{name} form-encoded webhook has no payload field")
            payload = json.loads(text)
        else:
            payload = json.loads(body)
    except json.JSONDecodeError as e:
        raise WebhookRejected(
            400, f"{name} webhook body is not valid JSON (line {e.lineno} column {e.colno})"
        ) from e
    except (ValueError, RecursionError) as e:  # bad UTF-8, too many form fields, deep nesting
        raise WebhookRejected(
            400, f"{name} webhook body cannot be read as JSON ({type(e).__name__})"
        ) from e
    if not isinstance(payload, dict):
        raise WebhookRejected(400, f"{name} webhook body is JSON but not an object")
    return payload


def _text(payload: Mapping[str, Any], *path: str) -> str | None:
    """The non-empty string at `path`, or None: payloads are untrusted, so every step is checked."""
    node: Any = payload
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    if isinstance(node, str) and node and len(node) <= _MAX_TEXT:
        return node
    return None


# --- repository identity ----------------------------------------------------------------


def normalize_repo_url(url: str) -> str:
    """A comparison key for a repository URL: two URLs of one repository give the same key.

    Not a URL to fetch. For a network URL it is `host/path`:
    `https://github.com/Org/App.git`, `git@github.com:org/app.git`,
    `ssh://git@github.com:22/org/app`, `http://user:token@github.com/org/app.git/` all give
    `github.com/org/app`. Dropped: scheme, credentials, port, `.git`, empty path segments
    (duplicate and trailing slashes), query and fragment.

    The whole key is lower-cased, path included. GitHub, GitLab, Gitea and Bitbucket all
    treat owner and repository names case-insensitively, and a self-hosted server's host
    name says nothing about which software it runs. The two possible errors are not equal:
    a false match (two repos differing only in case, on a case-sensitive server) costs one
    cheap refresh that finds nothing changed; a miss delays a deploy by a whole interval.
    Ports are dropped for the same reason: SSH and HTTPS reach one repository on different
    ports.

    A local path or `file://` URL gives `file://<resolved absolute path>`, case and `.git`
    kept (`app` and `app.git` can be different directories); symlinks are resolved, which
    is this module's only I/O. The key never contains credentials, so it may be logged.
    An empty or unusable URL gives "", which `same_repo` matches with nothing.
    """
    text = url.strip()
    if not text:
        return ""
    if "://" not in text:
        if not text.startswith(("/", ".")) and (scp := _SCP.fullmatch(text)):
            return _network_key(scp["host"] or scp["ipv6"], scp["path"])
        return _file_key(text)  # git reads anything else as a local path
    parts = urlsplit(text)
    if parts.scheme.lower() == "file":
        return _file_key(unquote(parts.path)) if parts.path else ""
    if not parts.hostname:
        return ""
    return _network_key(parts.hostname, parts.path)


def same_repo(a: str, b: str) -> bool:
    """Whether two repository URLs name one repository (see `normalize_repo_url`)."""
    key = normalize_repo_url(a)
    return bool(key) and key == normalize_repo_url(b)


def _network_key(host: str, path: str) -> str:
    segments = [segment for segment in path.lower().split("/") if segment]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][: -len(".git")]
        if not segments[-1]:
            segments.pop()
    return "/".join([host.lower(), *segments])


def _file_key(path: str) -> str:
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the path as written
        resolved = Path(os.path.abspath(path))
    return f"file://{resolved.as_posix()}"


# --- rate limit and refresh queue -------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Refresh:
    """One queued repository to refresh, known by the keys of every URL it was named by."""

    keys: frozenset[str]

    def matches(self, repo_url: str) -> bool:
        """Whether an Application following `repo_url` should be refreshed for this."""
        return normalize_repo_url(repo_url) in self.keys

    def __str__(self) -> str:
        return ", ".join(sorted(self.keys))


class WebhookLimiter:
    """Token buckets per (provider, client) and the bounded queue of repositories to refresh.

    Token bucket, worked example with `rate=1, burst=20`: a client's bucket starts full
    with 20 tokens and each admitted request takes one, so 20 requests at t=0 all pass and
    the 21st is refused (429, retry after 1 s). Tokens come back at `rate` per second up to
    `burst`: at t=0.5 the bucket holds 0.5 (still refused, retry after 0.5 s), at t=1 it
    holds 1 and one request passes. A refused request takes nothing, so a client that
    keeps retrying is still served at `rate`.

    Buckets live in an LRU table of `max_clients`; past it the least recently seen client
    is forgotten, which at worst hands it a fresh burst. The queue holds at most
    `queue_size` repositories; offering one that already waits merges into it (one refresh
    for any number of pushes), and a repository taken for refresh can be queued again at
    once, since a push during a sync is a new commit to sync.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        rate: float = 1.0,
        burst: int = 20,
        queue_size: int = 100,
        max_clients: int = 1024,
    ) -> None:
        if rate <= 0 or burst < 1 or queue_size < 1 or max_clients < 1:
            raise ValueError("rate, burst, queue_size and max_clients must be positive")
        self._clock = clock
        self._rate = rate
        self._burst = burst
        self._queue_size = queue_size
        self._max_clients = max_clients
        self._buckets: OrderedDict[tuple[Provider, str], _Bucket] = OrderedDict()
        # Pending repositories in arrival order: entry id -> keys; `_index` maps each key
        # to the one entry holding it, so coalescing is a dict lookup.
        self._pending: dict[int, set[str]] = {}
        self._index: dict[str, int] = {}
        self._next_id = 0
        self._nonempty = asyncio.Event()

    def admit(self, provider: str, client: str) -> None:
        """Take a token for `client` (its address) or raise `WebhookRejected(429)`."""
        which = provider_of(provider)
        key = (which, client)
        now = self._clock.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self._burst), updated=now)
            if len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self._burst), bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / self._rate
            raise WebhookRejected(
                429,
                f"too many {_DISPLAY[which]} webhooks from this address (at most "
                f"{self._burst} at once, then {self._rate:g} per second); retry in "
                f"{max(1, math.ceil(wait))} s",
                retry_after=wait,
            )
        bucket.tokens -= 1

    def offer(self, repo_url: str, *aliases: str) -> bool:
        """Queue a refresh of the repository `repo_url` (also known as `aliases`).

        True when it is queued or already waiting (coalesced); False when no URL is usable
        or the queue is full, in which case the interval poll picks the push up.
        """
        # In the order given, so a cap keeps the URL offered first.
        keys = list(
            dict.fromkeys(
                key
                for url in (repo_url, *aliases)
                if len(url) <= _MAX_TEXT and (key := normalize_repo_url(url))
            )
        )
        if not keys:
            return False
        hits = [self._index[key] for key in keys if key in self._index]
        if hits:
            entry_id = min(hits)  # the oldest, so merging never moves a repo back in line
            entry = self._pending[entry_id]
            for key in keys:
                if len(entry) >= _MAX_KEYS_PER_REFRESH:
                    break
                if key not in self._index:
                    entry.add(key)
                    self._index[key] = entry_id
            return True
        if len(self._pending) >= self._queue_size:
            log.warning(
                "webhook refresh queue full (%d repositories); %s waits for its interval",
                self._queue_size,
                keys[0],
            )
            return False
        entry_id = self._next_id
        self._next_id += 1
        self._pending[entry_id] = set(keys[:_MAX_KEYS_PER_REFRESH])
        for key in self._pending[entry_id]:
            self._index[key] = entry_id
        self._nonempty.set()
        return True

    def take_nowait(self) -> Refresh | None:
        """The oldest waiting repository, or None; it leaves the queue (it can be re-offered)."""
        if not self._pending:
            return None
        entry_id = next(iter(self._pending))
        keys = self._pending.pop(entry_id)
        for key in keys:
            del self._index[key]
        return Refresh(frozenset(keys))

    async def take(self) -> Refresh:
        """Wait for the oldest waiting repository and remove it from the queue."""
        while True:
            refresh = self.take_nowait()
            if refresh is not None:
                return refresh
            self._nonempty.clear()
            await self._nonempty.wait()

    def __len__(self) -> int:
        """Repositories waiting for a refresh."""
        return len(self._pending)


# --- the whole request ------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """An accepted delivery: the event, and whether it queued a refresh (202) or not (200)."""

    event: PushEvent
    queued: bool

    @property
    def status(self) -> int:
        return 202 if self.queued else 200

    @property
    def message(self) -> str:
        if self.queued:
            return f"refresh queued for {normalize_repo_url(self.event.repo_urls[0])}"
        return f"{self.event.event!r} event: nothing to refresh"


def receive(
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    secret: str | bytes | None,
    *,
    client: str,
    limiter: WebhookLimiter,
) -> Received:
    """A whole webhook request: rate limit, verify, parse, queue; `WebhookRejected` if refused.

    The order matters: the rate limit comes before the HMAC so a flood costs a dict lookup,
    and nothing is parsed before it is verified. An aiohttp handler is then:

        try:
            result = receive(provider, request.headers, await request.read(), secret,
                             client=request.remote or "", limiter=limiter)
        except WebhookRejected as e:
            return web.Response(status=e.status, text=e.message, headers=e.headers())
        return web.Response(status=result.status, text=result.message)
    """
    try:
        which = provider_of(provider)
        limiter.admit(which, client)
        verify(which, headers, body, secret)
        event = parse_push(which, headers, body)
        if not event.refresh_needed:
            log.info(
                "webhook %s %r (delivery %s): nothing to refresh",
                which,
                event.event,
                event.delivery,
            )
            return Received(event, queued=False)
        if not limiter.offer(*event.repo_urls):
            raise WebhookRejected(
                503,
                "the webhook refresh queue is full; the Applications following this "
                "repository sync on their interval instead",
                retry_after=60,
            )
    except WebhookRejected as e:
        # A flood of 429s must not become a flood of log lines: those go to debug.
        level = logging.DEBUG if e.status == 429 else logging.WARNING
        log.log(level, "webhook %s refused (%d): %s", _printable(provider, 40), e.status, e.message)
        raise
    log.info(
        "webhook %s push (delivery %s): %s %s at %s, refresh queued",
        which,
        event.delivery,
        normalize_repo_url(event.repo_urls[0]),
        event.ref,
        event.after,
    )
    return Received(event, queued=True)
