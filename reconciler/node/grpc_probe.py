"""gRPC probes: the `grpc.health.v1.Health/Check` call a kubelet makes for `grpc: {port,
service}` probes, over plaintext HTTP/2.

Services written in Go, Java or Rust declare `livenessProbe: {grpc: {port: 9000}}` and expect
the container to be restarted only when the health service says so; without the probe a
kubelet would count every check as failed and restart a healthy container forever.

The call is small enough to speak HTTP/2 by hand (no gRPC library in the node): the
connection preface and an empty SETTINGS frame, one HEADERS frame whose header block uses
HPACK literals only (no table, no Huffman coding: any decoder takes them), one DATA frame with
the request, then frames are read until the stream ends. The answer is read from the DATA
frames alone (`HealthCheckResponse.status`, field 1), so the server's header blocks need no
decoding: a call that fails carries no message, which is a failure either way, as for the
kubelet (whose words for the result this module uses).
"""

from __future__ import annotations

import asyncio
import struct

__all__ = ["STATUS_NAMES", "check", "health_request", "parse_status"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
_END_STREAM, _END_HEADERS, _ACK = 0x1, 0x4, 0x1
_STREAM = 1

STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def _literal(name: str, value: str) -> bytes:
    """An HPACK literal header field without indexing, new name, no Huffman coding."""

    def string(text: str) -> bytes:
        data = text.encode()
        if len(data) < 127:
            return bytes([len(data)]) + data
        length, out = len(data) - 127, bytearray([127])
        while length >= 128:
            out.append(length % 128 + 128)
            length //= 128
        out.append(length)
        return bytes(out) + data

    return b"\x00" + string(name) + string(value)


def health_request(authority: str, service: str) -> bytes:
    """Everything the client sends: preface, SETTINGS, HEADERS and the request's DATA."""
    block = b"".join(
        _literal(name, value)
        for name, value in (
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("user-agent", "recon-probe"),
        )
    )
    service_bytes = service.encode()
    message = (b"\x0a" + _varint(len(service_bytes)) + service_bytes) if service else b""
    grpc_message = b"\x00" + struct.pack(">I", len(message)) + message
    return (
        PREFACE
        + _frame(_SETTINGS, 0, 0, b"")
        + _frame(_HEADERS, _END_HEADERS, _STREAM, block)
        + _frame(_DATA, _END_STREAM, _STREAM, grpc_message)
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def parse_status(data: bytes) -> int | None:
    """`HealthCheckResponse.status` from the response's gRPC message (None: no message)."""
    if len(data) < 5:
        return None
    length = struct.unpack(">I", data[1:5])[0]
    message = data[5 : 5 + length]
    status, i = 0, 0  # an absent field is its default, UNKNOWN
    while i < len(message):
        key = message[i]
        i += 1
        if key & 0x07 != 0:  # not a varint: skip what HealthCheckResponse never has
            return status
        value, shift = 0, 0
        while i < len(message):
            byte = message[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if key >> 3 == 1:
            status = value
    return status


async def _exchange(host: str, port: int, service: str) -> tuple[bytes, str]:
    """(the DATA of the response, why the call ended without one)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(health_request(f"{host}:{port}", service))
        await writer.drain()
        data = bytearray()
        while True:
            header = await reader.readexactly(9)
            length = int.from_bytes(header[:3], "big")
            kind, flags = header[3], header[4]
            stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
            payload = await reader.readexactly(length)
            if kind == _SETTINGS and not flags & _ACK:
                writer.write(_frame(_SETTINGS, _ACK, 0, b""))
            elif kind == _PING and not flags & _ACK:
                writer.write(_frame(_PING, _ACK, 0, payload))
            elif kind == _GOAWAY:
                return bytes(data), "the server closed the connection (GOAWAY)"
            elif stream == _STREAM and kind == _RST_STREAM:
                return bytes(data), "the server reset the stream"
            elif stream == _STREAM and kind == _DATA:
                data += payload
            if stream == _STREAM and kind in (_DATA, _HEADERS) and flags & _END_STREAM:
                return bytes(data), "the call ended without a response"
    finally:
        writer.close()


async def check(host: str, port: int, service: str, timeout: float) -> tuple[bool, str]:
    """(healthy, the kubelet's message when not)."""
    target = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            data, why = await _exchange(host, port, service)
    except TimeoutError:
        return False, f"timeout: health rpc did not complete within {timeout:g}s"
    except (OSError, asyncio.IncompleteReadError) as exc:
        return False, f'timeout: failed to connect service "{target}" within {timeout:g}s: {exc}'
    status = parse_status(data)
    if status is None:
        return False, f"error: health rpc probe failed: {why}"
    if status != 1:
        name = STATUS_NAMES.get(status, str(status))
        return False, f'service unhealthy (responded with "{name}")'
    return True, ""
