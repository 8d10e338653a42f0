"""Webhooks: signatures, push payloads, repository identity, rate limit and refresh queue.

The wire is faked, not the internals: requests are headers and bytes signed here with
`hmac` exactly as the providers sign them, and time is a `ManualClock`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.clock import ManualClock
from reconciler.source.webhooks import (
    MAX_BODY_BYTES,
    PushEvent,
    Refresh,
    WebhookLimiter,
    WebhookRejected,
    normalize_repo_url,
    parse_push,
    receive,
    same_repo,
    verify,
)

SECRET = "s3cr3t-Webhook-Value"
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_push(url: str = "https://github.com/Org/App.git") -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": SHA,
        "repository": {
            "full_name": "Org/App",
            "html_url": "https://github.com/Org/App",
            "clone_url": url,
            "ssh_url": "git@github.com:Org/App.git",
            "git_url": "git://github.com/Org/App.git",
        },
        "commits": [{"id": SHA, "message": "bump"}],
    }


def gitlab_push() -> dict[str, Any]:
    return {
        "object_kind": "push",
        "ref": "refs/heads/main",
        "after": SHA,
        "checkout_sha": SHA,
        "project": {
            "web_url": "https://gitlab.example.com/group/sub/app",
            "git_ssh_url": "git@gitlab.example.com:group/sub/app.git",
            "git_http_url": "https://gitlab.example.com/group/sub/app.git",
        },
        "repository": {
            "url": "git@gitlab.example.com:group/sub/app.git",
            "homepage": "https://gitlab.example.com/group/sub/app",
            "git_http_url": "https://gitlab.example.com/group/sub/app.git",
            "git_ssh_url": "git@gitlab.example.com:group/sub/app.git",
        },
    }


def gitea_push() -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "after": SHA,
        "repository": {
            "clone_url": "http://gitea.local:3000/ops/app.git",
            "ssh_url": "ssh://git@gitea.local:2222/ops/app.git",
            "html_url": "http://gitea.local:3000/ops/app",
        },
    }


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode()


def github_headers(body: bytes, event: str = "push") -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": "sha256=" + sign(body),
        "Content-Type": "application/json",
    }


def rejected(call: Any, *args: Any, **kwargs: Any) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        call(*args, **kwargs)
    return info.value


# --- verify -------------------------------------------------------------------------------


class TestVerify:
    body = encode(github_push())

    def test_github_good_signature_passes(self) -> None:
        verify("github", github_headers(self.body), self.body, SECRET)

    def test_header_names_are_case_insensitive_and_hex_case_too(self) -> None:
        headers = {"x-hub-signature-256": "sha256=" + sign(self.body).upper()}
        verify("github", headers, self.body, SECRET.encode())

    @pytest.mark.parametrize(
        ("headers", "says"),
        [
            ({}, "no X-Hub-Signature-256"),
            ({"X-Hub-Signature": "sha1=" + "a" * 40}, "no X-Hub-Signature-256"),
            ({"X-Hub-Signature-256": sign(b"x")}, "is not sha256="),
            ({"X-Hub-Signature-256": "sha256=zz"}, "is not sha256="),
            ({"X-Hub-Signature-256": "sha256=" + "é" * 64}, "is not sha256="),
            ({"X-Hub-Signature-256": "sha256=" + sign(b"other body")}, "does not match"),
            ({"X-Hub-Signature-256": "sha256=" + sign(body, "wrong")}, "does not match"),
        ],
    )
    def test_github_bad_signatures_are_401(self, headers: dict[str, str], says: str) -> None:
        error = rejected(verify, "github", headers, self.body, SECRET)
        assert error.status == 401
        assert says in error.message

    def test_a_tampered_body_is_401(self) -> None:
        headers = github_headers(self.body)
        error = rejected(verify, "github", headers, self.body + b" ", SECRET)
        assert error.status == 401

    @pytest.mark.parametrize("header", ["X-Gitea-Signature", "X-Hub-Signature-256"])
    def test_gitea_accepts_either_header(self, header: str) -> None:
        body = encode(gitea_push())
        prefix = "sha256=" if header == "X-Hub-Signature-256" else ""
        verify("gitea", {header: prefix + sign(body)}, body, SECRET)

    def test_gitea_checks_its_own_header_first(self) -> None:
        body = encode(gitea_push())
        headers = {"X-Gitea-Signature": sign(b"x"), "X-Hub-Signature-256": "sha256=" + sign(body)}
        assert rejected(verify, "gitea", headers, body, SECRET).status == 401

    def test_gitea_without_any_signature_is_401(self) -> None:
        error = rejected(verify, "gitea", {}, b"{}", SECRET)
        assert error.status == 401
        assert "X-Gitea-Signature or X-Hub-Signature-256" in error.message

    def test_gitlab_token(self) -> None:
        verify("gitlab", {"X-Gitlab-Token": SECRET}, b"{}", SECRET)
        for headers in ({}, {"X-Gitlab-Token": "nope"}, {"X-Gitlab-Token": SECRET + " "}):
            assert rejected(verify, "gitlab", headers, b"{}", SECRET).status == 401

    def test_gitlab_token_that_is_not_utf8_is_401_not_a_crash(self) -> None:
        headers = {"X-Gitlab-Token": "\udcff\ud800"}
        assert rejected(verify, "gitlab", headers, b"{}", SECRET).status == 401

    @pytest.mark.parametrize("provider", ["github", "gitlab", "gitea"])
    @pytest.mark.parametrize("secret", ["", b"", None])
    def test_no_secret_disables_the_provider(
        self, provider: str, secret: str | bytes | None
    ) -> None:
        # Even a request "signed" with the empty key is refused.
        headers = {
            "X-Hub-Signature-256": "sha256=" + sign(self.body, ""),
            "X-Gitea-Signature": sign(self.body, ""),
            "X-Gitlab-Token": "",
        }
        error = rejected(verify, provider, headers, self.body, secret)
        assert error.status == 401
        assert "disabled" in error.message

    def test_unknown_provider_is_404(self) -> None:
        error = rejected(verify, "bitbucket\n", {}, b"{}", SECRET)
        assert error.status == 404
        assert "\n" not in error.message

    def test_too_large_body_is_413(self) -> None:
        body = b" " * (MAX_BODY_BYTES + 1)
        assert rejected(verify, "github", {}, body, SECRET).status == 413

    def test_no_message_ever_holds_the_secret_or_a_signature(self) -> None:
        good = sign(self.body)
        attempts: list[tuple[str, dict[str, str]]] = [
            ("github", {"X-Hub-Signature-256": "sha256=" + sign(self.body, "wrong")}),
            ("github", {"X-Hub-Signature-256": "sha256=" + good[:-1]}),
            ("github", {"X-Hub-Signature-256": good}),
            ("gitea", {"X-Gitea-Signature": sign(self.body, "wrong")}),
            ("gitlab", {"X-Gitlab-Token": SECRET[:-1]}),
            ("gitlab", {"X-Gitlab-Token": SECRET.upper()}),
        ]
        for provider, headers in attempts:
            error = rejected(verify, provider, headers, self.body, SECRET)
            text = f"{error} {error!r} {error.message}"
            assert SECRET not in text and SECRET[:-1] not in text
            assert good not in text and good[:-1] not in text
            for value in headers.values():
                assert value not in text


# --- parse_push ---------------------------------------------------------------------------


class TestParsePush:
    def test_github_push(self) -> None:
        body = encode(github_push())
        event = parse_push("github", github_headers(body), body)
        assert event == PushEvent(
            provider="github",
            event="push",
            push=True,
            repo_urls=(
                "https://github.com/Org/App.git",
                "https://github.com/Org/App",
                "git@github.com:Org/App.git",
                "git://github.com/Org/App.git",
            ),
            ref="refs/heads/main",
            after=SHA,
            delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        )
        assert event.refresh_needed and not event.deleted
        assert event.matches("https://github.com/org/app")
        assert event.matches("ssh://git@github.com/org/app")
        assert not event.matches("https://github.com/org/other")
        assert not event.matches("")

    @pytest.mark.parametrize("kind", ["ping", "issues", "pull_request", "create"])
    def test_github_events_other_than_push_need_no_refresh(self, kind: str) -> None:
        # The body is not even read: a ping is answered 200 whatever it holds.
        event = parse_push("github", {"X-GitHub-Event": kind}, b"not json")
        assert (event.event, event.push, event.refresh_needed) == (kind, False, False)

    def test_gitlab_push_names_every_url_once(self) -> None:
        body = encode(gitlab_push())
        event = parse_push("gitlab", {"X-Gitlab-Event": "Push Hook"}, body)
        assert event.repo_urls == (
            "https://gitlab.example.com/group/sub/app.git",
            "git@gitlab.example.com:group/sub/app.git",
            "https://gitlab.example.com/group/sub/app",
        )
        assert event.matches("https://gitlab.example.com/group/sub/app.git")

    def test_gitlab_old_payload_with_only_repository(self) -> None:
        payload = gitlab_push()
        del payload["project"]
        event = parse_push("gitlab", {"X-Gitlab-Event": "Tag Push Hook"}, encode(payload))
        assert event.refresh_needed
        assert event.matches("git@gitlab.example.com:group/sub/app.git")

    def test_gitlab_system_hook_refreshes_only_pushes(self) -> None:
        headers = {"X-Gitlab-Event": "System Hook"}
        assert parse_push("gitlab", headers, encode(gitlab_push())).refresh_needed
        other = {"event_name": "project_create", "object_kind": "project_create"}
        assert not parse_push("gitlab", headers, encode(other)).refresh_needed
        assert not parse_push("gitlab", {"X-Gitlab-Event": "Issue Hook"}, b"").push

    def test_gitea_push_and_gogs_header(self) -> None:
        body = encode(gitea_push())
        for header in ("X-Gitea-Event", "X-Gogs-Event"):
            event = parse_push("gitea", {header: "push", "X-Gitea-Delivery": "d-1"}, body)
            assert event.refresh_needed
            assert event.matches("http://gitea.local/ops/app")
            assert event.matches("git@gitea.local:ops/app.git")

    def test_form_encoded_payload(self) -> None:
        from urllib.parse import urlencode

        body = urlencode({"payload": json.dumps(github_push())}).encode()
        headers = {
            "X-GitHub-Event": "push",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        }
        assert parse_push("github", headers, body).after == SHA

    def test_branch_deletion_still_refreshes(self) -> None:
        payload = github_push()
        payload["after"] = "0" * 40
        event = parse_push("github", {"X-GitHub-Event": "push"}, encode(payload))
        assert event.refresh_needed and event.deleted

    def test_odd_fields_are_dropped_not_trusted(self) -> None:
        payload = github_push()
        payload["after"] = "not-a-sha"
        payload["ref"] = "refs/heads/main\nFAKE LOG LINE"
        payload["repository"]["ssh_url"] = 42
        payload["repository"]["git_url"] = "x" * 5000
        event = parse_push("github", {"X-GitHub-Event": "push"}, encode(payload))
        assert event.after is None
        assert event.ref == "refs/heads/mainFAKE LOG LINE"
        assert event.repo_urls == ("https://github.com/Org/App.git", "https://github.com/Org/App")

    @pytest.mark.parametrize(
        ("headers", "body", "says"),
        [
            ({"X-GitHub-Event": "push"}, b"{not json", "not valid JSON (line 1 column 2)"),
            ({"X-GitHub-Event": "push"}, b'{"a": "\xc3"}', "cannot be read as JSON"),
            ({"X-GitHub-Event": "push"}, b"[" * 100_000 + b"]" * 100_000, "JSON"),
            ({"X-GitHub-Event": "push"}, b"[1, 2]", "not an object"),
            ({"X-GitHub-Event": "push"}, b"{}", "names no repository"),
            ({"X-GitHub-Event": "push"}, b'{"repository": "x"}', "names no repository"),
            ({}, b"{}", "no X-GitHub-Event header"),
            (
                {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"},
                b"other=1",
                "no payload field",
            ),
        ],
    )
    def test_malformed_pushes_are_400(
        self, headers: dict[str, str], body: bytes, says: str
    ) -> None:
        error = rejected(parse_push, "github", headers, body)
        assert error.status == 400
        assert says in error.message

    def test_unknown_provider_is_404(self) -> None:
        assert rejected(parse_push, "svn", {}, b"{}").status == 404


# --- repository identity ----------------------------------------------------------------


SAME_AS_GITHUB_ORG_APP = [
    "https://github.com/Org/App.git",
    "https://github.com/org/app",
    "git@github.com:org/app.git",
    "ssh://git@github.com/org/app",
    "http://user:token@github.com/org/app.git/",
    "https://GitHub.com//org//app//",
    "https://github.com:443/org/app.git?x=1#frag",
    "ssh://git@github.com:22/org/app.git",
    "git+ssh://git@github.com/org/app",
    "git://github.com/org/app.git",
    "github.com:org/app",
    "  https://github.com/org/app.GIT  ",
]


@pytest.mark.parametrize("url", SAME_AS_GITHUB_ORG_APP)
def test_every_form_of_one_github_repo_matches(url: str) -> None:
    assert normalize_repo_url(url) == "github.com/org/app"
    assert same_repo(url, "https://github.com/Org/App.git")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://github.com/org/app", "https://github.com/org/app2"),
        ("https://github.com/org/app", "https://github.com/other/app"),
        ("https://github.com/org/app", "https://gitlab.com/org/app"),
        ("https://gitlab.com/group/sub/app", "https://gitlab.com/group/app"),
        ("https://github.com/org/app", "/org/app"),
        ("", ""),
        ("https:///nohost", "https:///nohost"),
    ],
)
def test_different_repos_do_not_match(a: str, b: str) -> None:
    assert not same_repo(a, b)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://gitlab.example.com/Group/Sub/App.git", "gitlab.example.com/group/sub/app"),
        ("ssh://git@gitea.local:2222/ops/app.git", "gitea.local/ops/app"),
        ("git@[::1]:org/app.git", "::1/org/app"),
        ("https://[::1]:3000/org/app.git", "::1/org/app"),
        ("git@host:/srv/git/app.git", "host/srv/git/app"),
        ("ssh://git@host/srv/git/app.git", "host/srv/git/app"),
        ("https://host/org/.git", "host/org"),
        ("", ""),
        ("   ", ""),
        ("file://", ""),
    ],
)
def test_normalized_keys(url: str, key: str) -> None:
    assert normalize_repo_url(url) == key


def test_keys_never_hold_credentials() -> None:
    key = normalize_repo_url("https://deploy:ghp_Secret123@github.com/org/app.git")
    assert "ghp_Secret123" not in key and "deploy" not in key


def test_file_paths_compare_as_resolved_paths(tmp_path: Path) -> None:
    repo = tmp_path / "repos" / "App.git"
    repo.mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "repos")
    expected = f"file://{repo.resolve().as_posix()}"
    for url in (
        str(repo),
        f"{repo}/",
        f"file://{repo}",
        f"file://{link}/App.git",
        f"file://{tmp_path}/repos/../repos/App.git",
        f"file://{str(repo).replace('App', '%41pp')}",
    ):
        assert normalize_repo_url(url) == expected, url
    # A directory name's case and its `.git` are part of the path.
    assert not same_repo(str(repo), str(tmp_path / "repos" / "app.git"))
    assert not same_repo(str(repo), str(tmp_path / "repos" / "App"))


def test_symlink_loop_does_not_crash(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert normalize_repo_url(str(tmp_path / "a")).startswith("file://")


# --- rate limit ---------------------------------------------------------------------------


class TestRateLimit:
    def test_burst_then_rate(self) -> None:
        clock = ManualClock()
        limiter = WebhookLimiter(clock, rate=2.0, burst=3)
        for _ in range(3):
            limiter.admit("github", "10.0.0.1")
        error = rejected(limiter.admit, "github", "10.0.0.1")
        assert (error.status, error.retry_after) == (429, 0.5)
        assert error.headers() == {"Retry-After": "1"}
        clock.advance(0.25)  # half a token
        assert rejected(limiter.admit, "github", "10.0.0.1").retry_after == 0.25
        clock.advance(0.25)  # one token
        limiter.admit("github", "10.0.0.1")
        assert rejected(limiter.admit, "github", "10.0.0.1").status == 429

    def test_refused_requests_take_no_tokens(self) -> None:
        clock = ManualClock()
        limiter = WebhookLimiter(clock, rate=1.0, burst=1)
        limiter.admit("gitlab", "c")
        for _ in range(100):
            rejected(limiter.admit, "gitlab", "c")
        clock.advance(1)
        limiter.admit("gitlab", "c")

    def test_refill_stops_at_burst(self) -> None:
        clock = ManualClock()
        limiter = WebhookLimiter(clock, rate=1.0, burst=2)
        clock.advance(3600)
        limiter.admit("gitea", "c")
        limiter.admit("gitea", "c")
        assert rejected(limiter.admit, "gitea", "c").status == 429

    def test_buckets_are_per_provider_and_client(self) -> None:
        limiter = WebhookLimiter(ManualClock(), rate=1.0, burst=1)
        limiter.admit("github", "a")
        limiter.admit("github", "b")
        limiter.admit("gitlab", "a")
        assert rejected(limiter.admit, "github", "a").status == 429
        assert rejected(limiter.admit, "nope", "a").status == 404

    def test_bucket_table_is_bounded_and_forgets_the_least_recent(self) -> None:
        limiter = WebhookLimiter(ManualClock(), rate=1.0, burst=1, max_clients=3)
        for client in ("a", "b", "c"):
            limiter.admit("github", client)
        rejected(limiter.admit, "github", "a")  # touches a: b is now the least recent
        limiter.admit("github", "d")  # forgets b
        assert rejected(limiter.admit, "github", "a").status == 429  # remembered
        limiter.admit("github", "b")  # a fresh bucket; forgets c
        limiter.admit("github", "c")
        for number in range(1000):
            limiter.admit("github", f"flood-{number}")
        assert len(limiter._buckets) == 3

    def test_invalid_settings(self) -> None:
        with pytest.raises(ValueError):
            WebhookLimiter(ManualClock(), rate=0)


# --- refresh queue ------------------------------------------------------------------------


class TestRefreshQueue:
    def test_duplicates_coalesce_in_arrival_order(self) -> None:
        limiter = WebhookLimiter(ManualClock(), queue_size=10)
        for _ in range(1000):
            for url in SAME_AS_GITHUB_ORG_APP:
                assert limiter.offer(url)
            assert limiter.offer("https://gitlab.com/g/app")
        assert len(limiter) == 2
        first = limiter.take_nowait()
        assert first == Refresh(frozenset({"github.com/org/app"}))
        assert first.matches("git@github.com:Org/App.git")
        second = limiter.take_nowait()
        assert second is not None and second.matches("https://gitlab.com/g/app.git")
        assert limiter.take_nowait() is None

    def test_aliases_merge_into_the_waiting_entry(self) -> None:
        limiter = WebhookLimiter(ManualClock())
        limiter.offer("https://gitlab.example.com/g/app")
        limiter.offer("https://other.example.com/x")
        # A push naming the waiting repo by two URLs (HTTP host and a separate SSH host).
        limiter.offer("https://gitlab.example.com/g/app.git", "git@ssh.example.com:g/app.git")
        assert len(limiter) == 2
        assert limiter.offer("ssh://git@ssh.example.com/g/app")  # coalesced via the alias
        refresh = limiter.take_nowait()
        assert refresh is not None
        assert refresh.keys == {"gitlab.example.com/g/app", "ssh.example.com/g/app"}
        assert str(refresh) == "gitlab.example.com/g/app, ssh.example.com/g/app"

    def test_full_queue_refuses_new_repos_but_coalesces_known_ones(self) -> None:
        limiter = WebhookLimiter(ManualClock(), queue_size=2)
        assert limiter.offer("https://h/a") and limiter.offer("https://h/b")
        assert not limiter.offer("https://h/c")
        assert limiter.offer("https://h/a.git")
        assert len(limiter) == 2

    def test_keys_per_entry_are_bounded(self) -> None:
        limiter = WebhookLimiter(ManualClock())
        limiter.offer("https://h/a", *(f"https://alias{i}/a" for i in range(100)))
        for i in range(100):
            limiter.offer("https://h/a", f"https://more{i}/a")
        refresh = limiter.take_nowait()
        assert refresh is not None and len(refresh.keys) == 16
        assert "h/a" in refresh.keys and "alias0/a" in refresh.keys
        assert limiter.take_nowait() is None
        assert limiter._index == {}

    def test_unusable_urls_are_refused(self) -> None:
        limiter = WebhookLimiter(ManualClock())
        assert not limiter.offer("")
        assert not limiter.offer("https://h/" + "x" * 5000)
        assert len(limiter) == 0

    def test_a_taken_repo_can_be_queued_again(self) -> None:
        limiter = WebhookLimiter(ManualClock())
        limiter.offer("https://h/a")
        assert limiter.take_nowait() is not None
        assert limiter.offer("https://h/a")
        assert len(limiter) == 1

    async def test_take_waits_for_an_offer(self) -> None:
        limiter = WebhookLimiter(ManualClock())
        waiter = asyncio.create_task(limiter.take())
        await asyncio.sleep(0)
        assert not waiter.done()
        limiter.offer("https://h/a")
        refresh = await asyncio.wait_for(waiter, 1)
        assert refresh.matches("https://h/a.git")

    async def test_two_takers_share_the_work(self) -> None:
        limiter = WebhookLimiter(ManualClock())
        takers = [asyncio.create_task(limiter.take()) for _ in range(2)]
        await asyncio.sleep(0)
        limiter.offer("https://h/a")
        limiter.offer("https://h/b")
        got = await asyncio.wait_for(asyncio.gather(*takers), 1)
        assert {str(refresh) for refresh in got} == {"h/a", "h/b"}


# --- the whole request ------------------------------------------------------------------


class TestReceive:
    def test_signed_push_queues_a_refresh(self) -> None:
        limiter = WebhookLimiter(ManualClock())
        body = encode(github_push())
        result = receive(
            "github", github_headers(body), body, SECRET, client="1.2.3.4", limiter=limiter
        )
        assert (result.status, result.queued) == (202, True)
        assert result.message == "refresh queued for github.com/org/app"
        refresh = limiter.take_nowait()
        assert refresh is not None and refresh.matches("git@github.com:org/app.git")

    def test_ping_is_200_and_queues_nothing(self) -> None:
        limiter = WebhookLimiter(ManualClock())
        body = b'{"zen": "Keep it logically awesome."}'
        result = receive(
            "github", github_headers(body, "ping"), body, SECRET, client="c", limiter=limiter
        )
        assert (result.status, result.queued, len(limiter)) == (200, False, 0)

    def test_wrong_signature_is_401_and_queues_nothing(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        limiter = WebhookLimiter(ManualClock())
        body = encode(github_push())
        headers = github_headers(body)
        headers["X-Hub-Signature-256"] = "sha256=" + sign(body, "guess")
        with caplog.at_level("DEBUG"):
            error = rejected(receive, "github", headers, body, SECRET, client="c", limiter=limiter)
        assert error.status == 401 and len(limiter) == 0
        assert "401" in caplog.text
        assert SECRET not in caplog.text
        assert sign(body, "guess") not in caplog.text

    def test_rate_limit_comes_before_the_signature_check(self) -> None:
        limiter = WebhookLimiter(ManualClock(), burst=1)
        body = encode(github_push())
        bad = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64}
        assert (
            rejected(receive, "github", bad, body, SECRET, client="c", limiter=limiter).status
            == 401
        )
        error = rejected(
            receive, "github", github_headers(body), body, SECRET, client="c", limiter=limiter
        )
        assert error.status == 429 and len(limiter) == 0

    def test_full_queue_is_503(self) -> None:
        limiter = WebhookLimiter(ManualClock(), queue_size=1)
        limiter.offer("https://h/other")
        body = encode(github_push())
        error = rejected(
            receive, "github", github_headers(body), body, SECRET, client="c", limiter=limiter
        )
        assert error.status == 503
        assert error.headers() == {"Retry-After": "60"}

    def test_a_flood_of_signed_pushes_makes_one_refresh(self) -> None:
        clock = ManualClock()
        limiter = WebhookLimiter(clock, rate=1000.0, burst=1000, queue_size=4)
        body = encode(github_push())
        headers = github_headers(body)
        for _ in range(5000):
            receive("github", headers, body, SECRET, client="gh", limiter=limiter)
            clock.advance(0.001)
        assert len(limiter) == 1
