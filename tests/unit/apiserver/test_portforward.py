"""The portforward.k8s.io stream pairing over SPDY, against a fake pod connection: the
client side is frames encoded here, the way kubectl's spdystream sends them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from reconciler.apiserver import spdy
from reconciler.apiserver.podio import PodStreamError
from reconciler.apiserver.portforward import PortForwardSession, StreamRequest, parse_stream


class FakeConnection:
    """A pod-side TCP connection: what the server wrote, and what the pod will send."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.to_send: asyncio.Queue[bytes] = asyncio.Queue()
        self.write_closed = asyncio.Event()
        self.closed = False

    async def read(self) -> bytes:
        return await self.to_send.get()

    async def write(self, data: bytes) -> None:
        self.received += data

    async def close_write(self) -> None:
        self.write_closed.set()

    async def close(self) -> None:
        self.closed = True


class Client:
    """kubectl's end: encodes its frames, decodes the server's."""

    def __init__(self, refuse: dict[int, str] | None = None) -> None:
        self.connections: dict[int, FakeConnection] = {}
        self.refuse = refuse or {}
        self._writer = spdy.FrameWriter()
        self._reader = spdy.FrameReader()
        self.frames: list[spdy.Frame] = []
        self.session = PortForwardSession(self._connect, self._receive)

    async def _connect(self, port: int) -> FakeConnection:
        if port in self.refuse:
            raise PodStreamError(500, self.refuse[port])
        self.connections[port] = FakeConnection()
        return self.connections[port]

    async def _receive(self, data: bytes) -> None:
        self.frames += self._reader.feed(data)

    async def send(self, *frames: spdy.Frame) -> None:
        await self.session.receive(spdy.encode_all(self._writer, frames))
        await asyncio.sleep(0)

    async def open_pair(self, error_id: int, port: int, request_id: str | None) -> None:
        headers = {"port": str(port)}
        if request_id is not None:
            headers["requestid"] = request_id
        await self.send(spdy.SynStream(error_id, {**headers, "streamtype": "error"}))
        await self.send(spdy.Data(error_id, b"", spdy.FLAG_FIN))  # kubectl never writes there
        await self.send(spdy.SynStream(error_id + 2, {**headers, "streamtype": "data"}))

    def data_on(self, stream_id: int) -> tuple[bytes, bool]:
        frames = [f for f in self.frames if isinstance(f, spdy.Data) and f.stream_id == stream_id]
        return b"".join(f.data for f in frames), any(f.fin for f in frames)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    made = Client()
    yield made
    await made.session.close()  # no forward task outlives its test


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"streamtype": "data", "port": "80", "requestid": "4"}, StreamRequest(3, "data", 80, "4")),
        # Before requestID (clients older than 1.6): error n and data n+2 are a pair.
        ({"streamtype": "error", "port": "80"}, StreamRequest(3, "error", 80, "3")),
        ({"streamtype": "data", "port": "80"}, StreamRequest(3, "data", 80, "1")),
        ({"streamtype": "data"}, '"port" header is required'),
        ({"streamtype": "data", "port": "http"}, "unable to parse 'http' as a port"),
        ({"streamtype": "data", "port": "70000"}, "unable to parse '70000' as a port"),
        ({"streamtype": "data", "port": "0"}, 'port "0" must be > 0'),
        ({"streamtype": "exec", "port": "80"}, 'invalid stream type "exec"'),
    ],
)
def test_parse_stream(headers: dict[str, str], expected: StreamRequest | str) -> None:
    assert parse_stream(3, headers) == expected


async def test_a_pair_forwards_both_ways_and_ends_with_the_pod(client: Client) -> None:
    await client.open_pair(1, 8080, "0")
    await settle()
    assert [f for f in client.frames if isinstance(f, spdy.SynReply)] == [
        spdy.SynReply(1),
        spdy.SynReply(3),
    ]
    pod = client.connections[8080]
    await client.send(spdy.Data(3, b"GET / HTTP/1.0\r\n"), spdy.Data(3, b"\r\n", spdy.FLAG_FIN))
    await settle()
    assert bytes(pod.received) == b"GET / HTTP/1.0\r\n\r\n" and pod.write_closed.is_set()
    pod.to_send.put_nowait(b"HTTP/1.0 200 OK\r\n\r\nhi")
    pod.to_send.put_nowait(b"")  # the pod closes its side
    await settle()
    assert client.data_on(3) == (b"HTTP/1.0 200 OK\r\n\r\nhi", True)
    assert client.data_on(1) == (b"", True)  # no error
    assert pod.closed


async def test_pairs_are_told_apart_by_request_id(client: Client) -> None:
    await client.open_pair(1, 8080, "0")
    await client.open_pair(5, 9090, "1")
    await settle()
    assert set(client.connections) == {8080, 9090}
    await client.send(spdy.Data(7, b"to 9090"), spdy.Data(3, b"to 8080"))
    await settle()
    assert client.connections[8080].received == b"to 8080"
    assert client.connections[9090].received == b"to 9090"


async def test_pairs_without_request_id_pair_by_stream_ids(client: Client) -> None:
    await client.open_pair(1, 8080, None)
    await settle()
    assert 8080 in client.connections


async def test_a_refused_connection_puts_the_kubelets_error_on_the_error_stream(
    client: Client,
) -> None:
    message = "error forwarding port 9999 to pod abc, uid : failed to connect"
    client.refuse[9999] = message
    await client.open_pair(1, 9999, "0")
    await settle()
    assert client.data_on(1) == (message.encode(), True)
    assert client.data_on(3) == (b"", True)
    # The session keeps serving other requests.
    await client.open_pair(5, 8080, "1")
    await settle()
    assert 8080 in client.connections


async def test_unusable_streams_are_refused(client: Client) -> None:
    await client.send(spdy.SynStream(1, {"streamtype": "error"}))
    await client.send(spdy.SynStream(3, {"streamtype": "bogus", "port": "80"}))
    assert client.frames == [
        spdy.RstStream(1, spdy.RstStatus.REFUSED_STREAM),
        spdy.RstStream(3, spdy.RstStatus.REFUSED_STREAM),
    ]


async def test_a_second_error_stream_for_one_request_is_reset(client: Client) -> None:
    await client.send(spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}))
    await client.send(spdy.SynStream(3, {"streamtype": "error", "port": "80", "requestid": "0"}))
    assert client.frames[-1] == spdy.RstStream(3, spdy.RstStatus.PROTOCOL_ERROR)


async def test_pings_are_echoed(client: Client) -> None:
    await client.send(spdy.Ping(1), spdy.Ping(3))
    assert client.frames == [spdy.Ping(1), spdy.Ping(3)]


async def test_a_reset_data_stream_closes_the_pod_connection_quietly(client: Client) -> None:
    await client.open_pair(1, 8080, "0")
    await settle()
    before = len(client.frames)
    await client.send(spdy.RstStream(3, spdy.RstStatus.CANCEL))
    await settle()
    assert client.connections[8080].closed
    assert client.frames[before:] == []


async def test_closing_the_session_closes_every_pod_connection(client: Client) -> None:
    await client.open_pair(1, 8080, "0")
    await client.open_pair(5, 8081, "1")
    await settle()
    await client.session.close()
    assert all(c.closed for c in client.connections.values())
