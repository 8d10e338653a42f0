"""The `portforward.k8s.io` protocol: `kubectl port-forward`'s streams on one SPDY connection.

For every local connection it accepts, kubectl opens a pair of SPDY streams carrying the
same `port` and `requestID` headers:

    SYN_STREAM 1 {streamtype: error, port: 8080, requestid: 0}   <- SYN_REPLY 1, then
    client: DATA 1 FIN (it never writes on the error stream)
    SYN_STREAM 3 {streamtype: data,  port: 8080, requestid: 0}   <- SYN_REPLY 3
    DATA 3 ... both ways: the bytes of the TCP connection

Once both streams of a request are there, the server connects to the port inside the pod
(the `PodStreams` port does that) and copies bytes both ways. When the pod closes its side,
the server ends the data stream (FIN) and then the error stream, empty: kubectl reads the
error stream to its end, and anything on it is an error it prints
(`an error occurred forwarding 5000 -> 8080: error forwarding port 8080 to pod ...`).
kubectl 1.32 also closes the whole SPDY connection after such an error (so the command
exits: `lost connection to pod`), as it does against a real kubelet.

Streams whose headers are unusable are refused (RST_STREAM REFUSED_STREAM) with the
kubelet's reasons; PINGs (kubectl sends one every 10 s) are echoed. `PortForwardSession` is
transport-free: feed it what the client sent, give it a coroutine that sends bytes back
(`pod_subresources` wires it to a WebSocket or an upgraded HTTP connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from reconciler.apiserver import spdy
from reconciler.apiserver.podio import PodConnection, PodStreamError

__all__ = [
    "PROTOCOL",
    "WEBSOCKET_PROTOCOL",
    "PortForwardSession",
    "StreamRequest",
    "parse_stream",
]

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"
WEBSOCKET_PROTOCOL = "SPDY/3.1+" + PROTOCOL
STREAM_TYPE, PORT, REQUEST_ID = "streamtype", "port", "requestid"
ERROR, DATA = "error", "data"
CHUNK = 32 * 1024
_QUEUED_CHUNKS = 64  # client -> pod; a slow pod slows the whole connection down

Connect = Callable[[int], Awaitable[PodConnection]]
SendBytes = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class StreamRequest:
    stream_id: int
    kind: str  # ERROR or DATA
    port: int
    request_id: str


def parse_stream(stream_id: int, headers: spdy.HeaderMap) -> StreamRequest | str:
    """A stream's request, or why the kubelet would refuse it. Without a `requestID` header
    (clients before 1.6) the pair is told by stream ids: error stream n, data stream n+2."""
    port_text = headers.get(PORT, "")
    if not port_text:
        return f'"{PORT}" header is required'
    if not port_text.isdigit() or int(port_text) > 65535:
        return f"unable to parse {port_text!r} as a port"
    port = int(port_text)
    if port < 1:
        return f'port "{port_text}" must be > 0'
    kind = headers.get(STREAM_TYPE, "")
    if kind not in (ERROR, DATA):
        return f'invalid stream type "{kind}"'
    request_id = headers.get(REQUEST_ID) or str(stream_id if kind == ERROR else stream_id - 2)
    return StreamRequest(stream_id, kind, port, request_id)


@dataclass
class _Pair:
    request_id: str
    port: int
    error_stream: int | None = None
    data_stream: int | None = None
    inbound: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(_QUEUED_CHUNKS)
    )
    task: asyncio.Task[None] | None = None
    done: bool = False
    reset: bool = False


class PortForwardSession:
    """One client connection's worth of forwarded TCP connections."""

    def __init__(self, connect: Connect, send: SendBytes) -> None:
        self._connect = connect
        self._send_bytes = send
        self._reader = spdy.FrameReader()
        self._writer = spdy.FrameWriter()
        self._write_lock = asyncio.Lock()
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, _Pair] = {}
        self._last_stream = 0
        self.closed = False

    async def _send(self, *frames: spdy.Frame) -> None:
        # Encoded under the lock: the header compressor must see blocks in wire order.
        async with self._write_lock:
            await self._send_bytes(b"".join(self._writer.encode(f) for f in frames))

    async def receive(self, data: bytes) -> None:
        """Handle bytes from the client; sets `closed` when it said GOAWAY."""
        for frame in self._reader.feed(data):
            await self._handle(frame)

    async def _handle(self, frame: spdy.Frame) -> None:
        match frame:
            case spdy.SynStream(stream_id, headers):
                self._last_stream = max(self._last_stream, stream_id)
                await self._open(stream_id, headers)
            case spdy.Data(stream_id, data, _flags):
                pair = self._by_stream.get(stream_id)
                if pair is None or stream_id != pair.data_stream or pair.done:
                    return  # the error stream's FIN, or a stream already finished
                if data:
                    await pair.inbound.put(data)
                if frame.fin:
                    await pair.inbound.put(None)
            case spdy.RstStream(stream_id, _status):
                pair = self._by_stream.get(stream_id)
                if pair is not None:
                    pair.reset = True
                    if pair.task is not None:
                        pair.task.cancel()
            case spdy.Ping(ping_id):
                await self._send(spdy.Ping(ping_id))
            case spdy.GoAway():
                self.closed = True
            case _:
                pass  # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do without flow control

    async def _open(self, stream_id: int, headers: spdy.HeaderMap) -> None:
        request = parse_stream(stream_id, headers)
        if isinstance(request, str):
            log.debug("port-forward stream %d refused: %s", stream_id, request)
            await self._send(spdy.RstStream(stream_id, spdy.RstStatus.REFUSED_STREAM))
            return
        pair = self._pairs.get(request.request_id)
        if pair is None:
            pair = self._pairs[request.request_id] = _Pair(request.request_id, request.port)
        slot = "error_stream" if request.kind == ERROR else "data_stream"
        if getattr(pair, slot) is not None or pair.task is not None:
            await self._send(spdy.RstStream(stream_id, spdy.RstStatus.PROTOCOL_ERROR))
            return
        setattr(pair, slot, stream_id)
        self._by_stream[stream_id] = pair
        await self._send(spdy.SynReply(stream_id))
        if pair.error_stream is not None and pair.data_stream is not None:
            pair.task = asyncio.create_task(
                self._forward(pair), name=f"recon-portforward-{pair.port}-{pair.request_id}"
            )

    async def _forward(self, pair: _Pair) -> None:
        assert pair.error_stream is not None and pair.data_stream is not None
        message = b""
        try:
            try:
                connection = await self._connect(pair.port)
            except PodStreamError as e:
                message = e.message.encode()
                return
            try:
                await self._copy(pair, connection)
            finally:
                await connection.close()
        finally:
            pair.done = True
            _drain(pair.inbound)
            self._forget(pair)
            if not pair.reset:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._finish(pair, message)

    async def _finish(self, pair: _Pair, message: bytes) -> None:
        assert pair.error_stream is not None and pair.data_stream is not None
        frames: list[spdy.Frame] = [spdy.Data(pair.data_stream, b"", spdy.FLAG_FIN)]
        if message:
            frames.append(spdy.Data(pair.error_stream, message))
        frames.append(spdy.Data(pair.error_stream, b"", spdy.FLAG_FIN))
        await self._send(*frames)

    async def _copy(self, pair: _Pair, connection: PodConnection) -> None:
        """Pod -> client until the pod closes its side; client -> pod alongside."""
        assert pair.data_stream is not None
        upstream = asyncio.create_task(_to_pod(pair, connection), name="recon-portforward-up")
        try:
            while chunk := await connection.read():
                for start in range(0, len(chunk), CHUNK):
                    await self._send(spdy.Data(pair.data_stream, chunk[start : start + CHUNK]))
        finally:
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await upstream

    def _forget(self, pair: _Pair) -> None:
        self._pairs.pop(pair.request_id, None)
        for stream_id in (pair.error_stream, pair.data_stream):
            if stream_id is not None:
                self._by_stream.pop(stream_id, None)

    async def close(self) -> None:
        """The client went away: stop every forward and close its pod connection."""
        self.closed = True
        tasks = [p.task for p in self._pairs.values() if p.task is not None]
        for pair in self._pairs.values():
            pair.reset = True  # nothing can be sent any more
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pairs.clear()
        self._by_stream.clear()

    async def go_away(self) -> None:
        """Tell the client this side is done (sent before closing the connection)."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send(spdy.GoAway(self._last_stream))


async def _to_pod(pair: _Pair, connection: PodConnection) -> None:
    while (chunk := await pair.inbound.get()) is not None:
        await connection.write(chunk)
    await connection.close_write()


def _drain(queue: asyncio.Queue[bytes | None]) -> None:
    """Empty the queue, so a `put` blocked on a full one returns."""
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            queue.get_nowait()
