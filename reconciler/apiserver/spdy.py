"""SPDY/3.1 framing, the multiplexing layer under `kubectl port-forward`.

Kubernetes still carries port-forward streams in SPDY/3.1 (the `moby/spdystream` library
on both ends): tunnelled inside a WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`,
kubectl 1.31 and later) or on a connection upgraded with `Upgrade: SPDY/3.1`. Either way
the bytes are the same frames, described here. Pure: bytes in, frames out, and back.

Every frame starts with 8 bytes. A control frame has the high bit set:

    +----------------------------------+
    |1| version (15) = 3 | type (16)   |
    +----------------------------------+
    | flags (8) |  length (24)         |   length counts the bytes after these 8
    +----------------------------------+

a data frame has it clear:

    +----------------------------------+
    |0| stream id (31)                 |
    +----------------------------------+
    | flags (8) |  length (24)         |   flag 0x01 FIN: the sender's last frame
    +----------------------------------+

Concrete example: `DATA(stream 1, FIN, b"hi")` is `00 00 00 01 01 00 00 02 68 69`.

SYN_STREAM, SYN_REPLY and HEADERS carry a header block: a count, then length-prefixed
(32-bit) lowercase names and values (several values of one name joined by NUL), all
zlib-compressed with the SPDY/3 dictionary as a preset. Each direction of a connection is
ONE zlib stream, flushed (Z_SYNC_FLUSH) after every block: the compressor and decompressor
live as long as the connection and must see the blocks in wire order.

spdystream implements no flow control: it sends no SETTINGS or WINDOW_UPDATE, ignores
them, and so must we (they are parsed and passed on for completeness).
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "DICTIONARY",
    "FLAG_FIN",
    "FLAG_UNIDIRECTIONAL",
    "Data",
    "Frame",
    "FrameReader",
    "FrameWriter",
    "GoAway",
    "GoAwayStatus",
    "Headers",
    "Ping",
    "RstStatus",
    "RstStream",
    "Settings",
    "SpdyProtocolError",
    "SynReply",
    "SynStream",
    "WindowUpdate",
]

VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02  # SYN_STREAM only
MAX_LENGTH = 0xFFFFFF

# The header-compression dictionary of SPDY draft 3 (section 2.6.10.1): these names and
# values, each with a 32-bit length in front, then a run of status codes, dates and
# content types. 1423 bytes, with no trailing NUL (spdystream's `headerDictionary`).
_NAMES = (
    "options head post put delete trace accept accept-charset accept-encoding "
    "accept-language accept-ranges age allow authorization cache-control connection "
    "content-base content-encoding content-language content-length content-location "
    "content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status"
)
_DICTIONARY_WORDS = [
    *_NAMES.split(),
    *("200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"),
]
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = (
    b"".join(struct.pack(">I", len(word)) + word.encode() for word in _DICTIONARY_WORDS)
    + _DICTIONARY_TAIL.encode()
)


class SpdyProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3.1: the connection cannot go on."""


class _Type(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(enum.IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


HeaderMap = Mapping[str, str]
"""Lowercase name -> value (several values joined by NUL, as on the wire)."""


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: HeaderMap = field(default_factory=dict)
    flags: int = 0
    associated_to: int = 0
    priority: int = 0


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: HeaderMap = field(default_factory=dict)
    flags: int = 0


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()
    """(flags, id, value) per setting."""
    flags: int = 0


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GoAwayStatus.OK


@dataclass(frozen=True)
class Headers:
    stream_id: int
    headers: HeaderMap = field(default_factory=dict)
    flags: int = 0


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes = b""
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame = SynStream | SynReply | RstStream | Settings | Ping | GoAway | Headers | WindowUpdate | Data


def encode_header_block(headers: HeaderMap) -> bytes:
    """The uncompressed name/value block: names lowercased, as spdystream requires."""
    parts = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name, raw_value = name.lower().encode(), value.encode()
        parts += [struct.pack(">I", len(raw_name)), raw_name]
        parts += [struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(parts)


def decode_header_block(block: bytes) -> dict[str, str]:
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        offset, headers = 4, {}
        for _ in range(count):
            (length,) = struct.unpack_from(">I", block, offset)
            name = block[offset + 4 : offset + 4 + length].decode()
            offset += 4 + length
            (length,) = struct.unpack_from(">I", block, offset)
            value = block[offset + 4 : offset + 4 + length].decode()
            offset += 4 + length
            if offset > len(block):
                raise SpdyProtocolError("header block shorter than its lengths say")
            headers[name] = value
    except (struct.error, UnicodeDecodeError) as e:
        raise SpdyProtocolError(f"malformed header block: {e}") from e
    return headers


def _control(kind: _Type, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"SPDY frame payload of {len(payload)} bytes exceeds 2^24-1")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


class FrameWriter:
    """Encodes frames for one direction of one connection (it owns that direction's zlib
    stream: encode in the order the frames go on the wire)."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zdict=DICTIONARY)

    def _compress(self, headers: HeaderMap) -> bytes:
        block = encode_header_block(headers)
        return self._zlib.compress(block) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        match frame:
            case Data(stream_id, data, flags):
                if len(data) > MAX_LENGTH:
                    raise ValueError("DATA payload exceeds 2^24-1 bytes: split it")
                return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data
            case SynStream(stream_id, headers, flags, associated_to, priority):
                head = struct.pack(
                    ">IIBB", stream_id & 0x7FFFFFFF, associated_to & 0x7FFFFFFF, priority << 5, 0
                )
                return _control(_Type.SYN_STREAM, flags, head + self._compress(headers))
            case SynReply(stream_id, headers, flags):
                payload = struct.pack(">I", stream_id & 0x7FFFFFFF) + self._compress(headers)
                return _control(_Type.SYN_REPLY, flags, payload)
            case Headers(stream_id, headers, flags):
                payload = struct.pack(">I", stream_id & 0x7FFFFFFF) + self._compress(headers)
                return _control(_Type.HEADERS, flags, payload)
            case RstStream(stream_id, status):
                return _control(_Type.RST_STREAM, 0, struct.pack(">II", stream_id, status))
            case Settings(entries, flags):
                payload = struct.pack(">I", len(entries)) + b"".join(
                    struct.pack(">II", (f << 24) | i, v) for f, i, v in entries
                )
                return _control(_Type.SETTINGS, flags, payload)
            case Ping(ping_id):
                return _control(_Type.PING, 0, struct.pack(">I", ping_id))
            case GoAway(last_good, status):
                return _control(_Type.GOAWAY, 0, struct.pack(">II", last_good, status))
            case WindowUpdate(stream_id, delta):
                return _control(_Type.WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")


class FrameReader:
    """Decodes the frames of one direction of one connection from bytes as they arrive
    (in any chunking: a WebSocket message or a TCP read need not hold whole frames)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._zlib = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer, 0)
            length = second & MAX_LENGTH
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            flags = second >> 24
            if first & 0x80000000:
                frame = self._control(first, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(Data(first & 0x7FFFFFFF, payload, flags))
        return frames

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._zlib.decompress(block)
        except zlib.error as e:
            raise SpdyProtocolError(f"cannot decompress a header block: {e}") from e
        return decode_header_block(raw)

    def _control(self, first: int, flags: int, payload: bytes) -> Frame | None:
        version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyProtocolError(f"SPDY version {version} is not supported (only 3)")
        try:
            if kind == _Type.SYN_STREAM:
                stream_id, associated, priority = struct.unpack_from(">IIB", payload, 0)
                return SynStream(
                    stream_id & 0x7FFFFFFF,
                    self._headers(payload[10:]),
                    flags,
                    associated & 0x7FFFFFFF,
                    priority >> 5,
                )
            if kind == _Type.SYN_REPLY:
                (stream_id,) = struct.unpack_from(">I", payload, 0)
                return SynReply(stream_id & 0x7FFFFFFF, self._headers(payload[4:]), flags)
            if kind == _Type.HEADERS:
                (stream_id,) = struct.unpack_from(">I", payload, 0)
                return Headers(stream_id & 0x7FFFFFFF, self._headers(payload[4:]), flags)
            if kind == _Type.RST_STREAM:
                stream_id, status = struct.unpack_from(">II", payload, 0)
                return RstStream(stream_id & 0x7FFFFFFF, status)
            if kind == _Type.SETTINGS:
                (count,) = struct.unpack_from(">I", payload, 0)
                entries = []
                for n in range(count):
                    key, value = struct.unpack_from(">II", payload, 4 + 8 * n)
                    entries.append((key >> 24, key & 0xFFFFFF, value))
                return Settings(tuple(entries), flags)
            if kind == _Type.PING:
                return Ping(struct.unpack_from(">I", payload, 0)[0])
            if kind == _Type.GOAWAY:
                last_good, status = struct.unpack_from(">II", payload, 0)
                return GoAway(last_good & 0x7FFFFFFF, status)
            if kind == _Type.WINDOW_UPDATE:
                stream_id, delta = struct.unpack_from(">II", payload, 0)
                return WindowUpdate(stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error as e:
            raise SpdyProtocolError(f"truncated control frame of type {kind}: {e}") from e
        return None  # unknown control frames are ignored (SPDY/3 section 2.2.1)


def encode_all(writer: FrameWriter, frames: Iterable[Frame]) -> bytes:
    return b"".join(writer.encode(f) for f in frames)
