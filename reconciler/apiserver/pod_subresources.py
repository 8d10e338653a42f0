"""`pods/log`, `pods/exec`, `pods/attach`, `pods/portforward`: the pod subresources served
by the node.

The API server does what the Kubernetes API server does before it proxies to the kubelet:
look the pod up, check it has been bound to a node, resolve the container (the only one, or
the one named in `container`), parse the options with Kubernetes' messages; then it hands
the call to the `PodStreams` port. Logs stream as `text/plain` chunks (kept open for
`follow`); exec and attach upgrade to a WebSocket and speak the channel protocol
(`channels`). SPDY exec and attach, which older kubectl used, are refused with a clear
message. An exec ends with the process's exit status on the error channel; an attach ends
when the container's output does (it exited), with Success, as the kubelet's does.

Port-forward speaks SPDY/3.1 (`spdy`, `portforward`), reached either way kubectl 1.31+
tries: a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io` whose binary messages
carry the SPDY bytes, or, when that upgrade fails, a plain `Upgrade: SPDY/3.1` connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import WSMsgType, web

from reconciler.apiserver import channels, portforward, spdy
from reconciler.apiserver.errors import ApiError, bad_request
from reconciler.apiserver.podio import (
    AttachStream,
    LogOptions,
    PodConnection,
    PodStreamError,
    PodStreams,
)
from reconciler.clock import Clock

log = logging.getLogger(__name__)

__all__ = [
    "PodSubresources",
    "StreamsSource",
    "attach_request",
    "exec_request",
    "log_options",
    "resolve_container",
]

StreamsSource = Callable[[], PodStreams | None]


def _names(pod: Mapping[str, Any], key: str) -> list[str]:
    return [str(c.get("name")) for c in (pod.get("spec") or {}).get(key) or ()]


def resolve_container(pod: Mapping[str, Any], requested: str | None) -> str:
    """The container a log or exec call means, with the API server's messages."""
    name = str((pod.get("metadata") or {}).get("name") or "")
    containers = _names(pod, "containers")
    init = _names(pod, "initContainers")
    ephemeral = _names(pod, "ephemeralContainers")
    if not requested:
        if len(containers) == 1:
            return containers[0]
        message = (
            f"a container name must be specified for pod {name}, "
            f"choose one of: [{' '.join(containers)}]"
        )
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise bad_request(message)
    if requested not in containers + init + ephemeral:
        raise bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _flag(query: Mapping[str, str], key: str) -> bool:
    value = query.get(key, "false").lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0", ""):
        return False
    raise bad_request(f"{key}: Invalid value: {value!r}: must be true or false")


def _non_negative(query: Mapping[str, str], key: str, minimum: int = 0) -> int | None:
    text = query.get(key)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"{key}: Invalid value: {text!r}: must be an integer") from None
    if value < minimum:
        raise bad_request(
            f"{key}: Invalid value: {value}: must be greater than or equal to {minimum}"
        )
    return value


def _parse_time(key: str, text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{key}: Invalid value: {text!r}: must be an RFC 3339 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def log_options(query: Mapping[str, str], container: str, now: datetime) -> LogOptions:
    """`PodLogOptions` from the query string, validated as the API server does."""
    since_seconds = _non_negative(query, "sinceSeconds", minimum=1)
    since_time = query.get("sinceTime") or None
    if since_seconds is not None and since_time is not None:
        raise bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
    since: datetime | None = None
    if since_seconds is not None:
        since = now - timedelta(seconds=since_seconds)
    elif since_time is not None:
        since = _parse_time("sinceTime", since_time)
    return LogOptions(
        container=container,
        follow=_flag(query, "follow"),
        previous=_flag(query, "previous"),
        tail_lines=_non_negative(query, "tailLines"),
        since=since,
        timestamps=_flag(query, "timestamps"),
        limit_bytes=_non_negative(query, "limitBytes", minimum=1),
    )


def exec_request(query: Any) -> tuple[list[str], bool, bool, bool, bool, str | None]:
    """(command, stdin, stdout, stderr, tty, container) from `PodExecOptions` parameters;
    `query` is a multidict, as `command` repeats."""
    command = [str(c) for c in query.getall("command", [])]
    if not command:
        raise bad_request("you must specify at least 1 command")
    return (command, *attach_request(query))


def attach_request(query: Mapping[str, str]) -> tuple[bool, bool, bool, bool, str | None]:
    """(stdin, stdout, stderr, tty, container) from `PodAttachOptions` parameters (the
    streams part of `PodExecOptions` too)."""
    stdin, stdout = _flag(query, "stdin"), _flag(query, "stdout")
    stderr, tty = _flag(query, "stderr"), _flag(query, "tty")
    if not (stdin or stdout or stderr):
        raise bad_request("you must specify at least one of stdin, stdout, stderr")
    if tty and stderr:
        raise bad_request("tty and stderr cannot both be true")
    return stdin, stdout, stderr, tty, query.get("container") or None


def _from_port(error: PodStreamError) -> ApiError:
    reasons = {400: "BadRequest", 404: "NotFound", 500: "InternalError", 503: "ServiceUnavailable"}
    return ApiError(error.status, reasons.get(error.status, "BadRequest"), error.message)


class PodSubresources:
    """Serves `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward` for the pods
    `get_pod` finds."""

    def __init__(
        self,
        get_pod: Callable[[str, str], dict[str, Any]],
        streams: StreamsSource,
        clock: Clock,
    ) -> None:
        self._get_pod = get_pod
        self._streams = streams
        self._clock = clock

    def _port(self, pod: Mapping[str, Any]) -> PodStreams:
        name = str((pod.get("metadata") or {}).get("name") or "")
        if not (pod.get("spec") or {}).get("nodeName"):
            raise bad_request(f"pod {name} does not have a host assigned")
        streams = self._streams()
        if streams is None:
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"no node agent runs on this server to reach pod {name} "
                "(recon serve --runtime none)",
            )
        return streams

    async def log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod = self._get_pod(namespace, name)
        container = resolve_container(pod, request.query.get("container"))
        options = log_options(request.query, container, self._clock.now())
        streams = self._port(pod)
        try:
            chunks = await streams.logs(pod, options)
        except PodStreamError as e:
            raise _from_port(e) from e
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        async with contextlib.aclosing(chunks):  # type: ignore[type-var]
            await response.prepare(request)
            try:
                async for chunk in chunks:
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                log.debug("log client went away")  # `kubectl logs -f` interrupted
        return response

    async def exec(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod = self._get_pod(namespace, name)
        command, stdin, _stdout, _stderr, tty, requested = exec_request(request.query)
        container = resolve_container(pod, requested)
        streams = self._port(pod)
        ws = _channel_socket(request, "exec")
        try:
            session = await streams.exec(pod, container, command, stdin=stdin, tty=tty)
        except PodStreamError as e:
            raise _from_port(e) from e

        async def exit_status() -> bytes:
            code = await session.exit_code()
            return channels.exit_status(ws.ws_protocol, command, code)

        try:
            await ws.prepare(request)
            await _relay(ws, session, exit_status)
        finally:
            await session.close()
        return ws

    async def attach(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod = self._get_pod(namespace, name)
        stdin, _stdout, _stderr, tty, requested = attach_request(request.query)
        container = resolve_container(pod, requested)
        streams = self._port(pod)
        ws = _channel_socket(request, "attach")
        try:
            session = await streams.attach(pod, container, stdin=stdin, tty=tty)
        except PodStreamError as e:
            raise _from_port(e) from e

        async def ended() -> bytes:
            # The kubelet reports Success once the attached streams end, whatever the
            # process's exit code (`kubectl get pod` shows that).
            return channels.exit_status(ws.ws_protocol, [], 0)

        try:
            await ws.prepare(request)
            await _relay(ws, session, ended)
        finally:
            await session.close()
        return ws

    async def port_forward(
        self, request: web.Request, namespace: str, name: str
    ) -> web.StreamResponse:
        pod = self._get_pod(namespace, name)
        streams = self._port(pod)

        async def connect(port: int) -> PodConnection:
            return await streams.port_forward(pod, port)

        ws = web.WebSocketResponse(protocols=(portforward.WEBSOCKET_PROTOCOL,), autoping=True)
        ready = ws.can_prepare(request)
        if ready.ok and ready.protocol == portforward.WEBSOCKET_PROTOCOL:
            await ws.prepare(request)
            await _tunnel_over_websocket(ws, portforward.PortForwardSession(connect, ws.send_bytes))
            return ws
        if "spdy/3.1" in request.headers.get("Upgrade", "").lower():
            return await _serve_spdy_upgrade(request, connect)
        raise bad_request(
            "Upgrade request required: port-forward speaks SPDY/3.1, tunnelled in a WebSocket "
            f"({portforward.WEBSOCKET_PROTOCOL}) or upgraded to directly (Upgrade: SPDY/3.1)"
        )


def _channel_socket(request: web.Request, what: str) -> web.WebSocketResponse:
    """The WebSocket of `pods/exec` or `pods/attach`, refused with a message kubectl prints
    when the client asks for SPDY instead."""
    ws = web.WebSocketResponse(protocols=channels.PROTOCOLS, autoping=True)
    if not ws.can_prepare(request).ok:
        raise bad_request(
            f"unable to upgrade connection: this server speaks the WebSocket {what} protocol "
            "(v5.channel.k8s.io) that kubectl 1.30 and later use; SPDY is not supported"
        )
    return ws


async def _tunnel_over_websocket(
    ws: web.WebSocketResponse, session: portforward.PortForwardSession
) -> None:
    """Binary messages carry SPDY bytes, cut anywhere (the client writes one per frame)."""
    try:
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                await session.receive(message.data)
    except spdy.SpdyProtocolError as e:
        log.info("port-forward connection dropped: %s", e)
    except (ConnectionResetError, OSError) as e:
        log.debug("port-forward connection ended: %s", e)
    finally:
        await session.close()
        await ws.close()


class _UpgradedReader:
    """Takes over an HTTP connection's incoming bytes after a `101 Switching Protocols`
    (aiohttp hands bytes to a payload parser, as it does for WebSockets)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(None)


async def _serve_spdy_upgrade(
    request: web.Request, connect: portforward.Connect
) -> web.StreamResponse:
    """`Upgrade: SPDY/3.1` (kubectl's fallback, and every kubectl before 1.31): answer 101
    and speak SPDY on the raw connection for as long as it stays open."""
    protocols = [p.strip() for p in request.headers.getall("X-Stream-Protocol-Version", [])]
    if protocols and portforward.PROTOCOL not in protocols:
        raise bad_request(
            f"unable to upgrade: none of the requested protocols {protocols} is supported "
            f"(only {portforward.PROTOCOL})"
        )
    transport, protocol = request.transport, request.protocol
    if transport is None:
        raise bad_request("unable to upgrade: the connection is already closed")
    reader = _UpgradedReader()
    protocol.set_parser(reader)  # type: ignore[arg-type]  # duck-typed like WebSocketReader
    response = web.StreamResponse(
        status=101,
        headers={
            "Connection": "Upgrade",
            "Upgrade": "SPDY/3.1",
            "X-Stream-Protocol-Version": portforward.PROTOCOL,
        },
    )
    response.force_close()
    await response.prepare(request)

    async def send(data: bytes) -> None:
        if transport.is_closing():
            raise ConnectionResetError("port-forward client went away")
        transport.write(data)
        await protocol._drain_helper()

    session = portforward.PortForwardSession(connect, send)
    try:
        while (data := await reader.queue.get()) is not None:
            await session.receive(data)
    except spdy.SpdyProtocolError as e:
        log.info("port-forward connection dropped: %s", e)
    except (ConnectionResetError, OSError) as e:
        log.debug("port-forward connection ended: %s", e)
    finally:
        await session.close()
        transport.close()
    return response


async def _relay(
    ws: web.WebSocketResponse, session: AttachStream, final: Callable[[], Awaitable[bytes]]
) -> None:
    """Pump the client's stdin and resizes into the process and its output back, then send
    `final()` (the exit status) on the error channel and close. A client that hangs up ends
    the relay (the process keeps its own fate, as with the kubelet)."""
    reader = asyncio.create_task(_pump_stdin(ws, session), name="recon-exec-stdin")
    writer = asyncio.create_task(_pump_output(ws, session, final), name="recon-exec-out")
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        if reader.done() and not writer.done():
            # The client closed its end; nothing more can reach it.
            writer.cancel()
    finally:
        for task in (reader, writer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await task
                except (ConnectionResetError, OSError) as e:
                    log.debug("exec stream stopped: %s", e)
        await ws.close()


async def _pump_output(
    ws: web.WebSocketResponse, session: AttachStream, final: Callable[[], Awaitable[bytes]]
) -> None:
    while True:
        chunk = await session.read()
        if chunk is None:
            break
        stream, data = chunk
        channel = channels.STDOUT if stream == "stdout" else channels.STDERR
        await ws.send_bytes(channels.frame(channel, data))
    await ws.send_bytes(channels.frame(channels.ERROR, await final()))


async def _pump_stdin(ws: web.WebSocketResponse, session: AttachStream) -> None:
    async for message in ws:
        if message.type is not WSMsgType.BINARY:
            continue
        parsed = channels.parse_frame(message.data)
        if parsed is None:
            continue
        if parsed.channel == channels.STDIN and parsed.data:
            await session.write(parsed.data)
        elif parsed.channel == channels.RESIZE:
            size = channels.parse_resize(parsed.data)
            if size is not None:
                await session.resize(*size)
        elif parsed.channel == channels.CLOSE and parsed.data[:1] == bytes([channels.STDIN]):
            await session.close_stdin()
