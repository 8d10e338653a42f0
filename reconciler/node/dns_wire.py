"""DNS messages on the wire (RFC 1035): the small subset the cluster DNS speaks. Pure.

The cluster DNS (`cluster_dns.py` decides, `dns_server.py` listens) reads one question per
query and writes answers of a few types: A, AAAA (passed through from upstream), CNAME,
SRV, and SOA in the authority section of negative answers. Names it writes are never
compressed (the answers are small); names it reads may be (an upstream's answers are).

Worked example: the query for `web.shop.svc.cluster.local` A, id 0x1234, RD set, is
`12 34 01 00 00 01 00 00 00 00 00 00` (header: one question) then
`03 w e b 04 s h o p 03 s v c 07 c l u s t e r 05 l o c a l 00 00 01 00 01` (the name as
length-prefixed labels, type A = 1, class IN = 1). The answer repeats the header with QR,
AA and RA set (`85 80`), the question, and one record: the name again, `00 01 00 01`,
a TTL of 5 (`00 00 00 05`), `00 04` and the four address bytes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

__all__ = [
    "CLASS_IN",
    "MAX_UDP_SIZE",
    "Query",
    "Question",
    "Rcode",
    "Record",
    "Response",
    "Rtype",
    "WireError",
    "a_record",
    "cname_record",
    "decode_query",
    "decode_response",
    "encode_query",
    "encode_response",
    "soa_record",
    "srv_record",
]

CLASS_IN = 1
MAX_UDP_SIZE = 512
"""Without EDNS a UDP answer is at most 512 bytes; longer ones are truncated (TC set)."""
_EDNS_CAP = 4096

_HEADER = struct.Struct("!HHHHHH")
_QR, _AA, _TC, _RD, _RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080


class Rtype:
    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    AAAA = 28
    SRV = 33
    OPT = 41
    ANY = 255


class Rcode:
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5


class WireError(ValueError):
    """Bytes that are not a DNS message we can read."""


@dataclass(frozen=True)
class Question:
    name: str
    """Lower case, without the trailing dot (`web.shop.svc.cluster.local`)."""
    qtype: int
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    question: Question
    udp_size: int = MAX_UDP_SIZE
    """What the asker can take over UDP (its EDNS OPT record), at least 512."""
    edns: bool = False

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def is_response(self) -> bool:
        return bool(self.flags & _QR)


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    ttl: int
    rdata: bytes
    """Already encoded, names in it uncompressed."""


# -- names ---------------------------------------------------------------------------------


def _encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.strip(".").split(".") if name.strip(".") else []:
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not raw or len(raw) > 63:
            raise WireError(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    out += b"\0"
    if len(out) > 255:
        raise WireError(f"name too long: {name!r}")
    return bytes(out)


def _decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` (following compression pointers) and the offset after it."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if offset >= len(data):
            raise WireError("name runs past the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data) or jumps > 32:
                raise WireError("bad compression pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            continue
        if length & 0xC0:
            raise WireError("unknown label type")
        offset += 1
        if length == 0:
            break
        if offset + length > len(data):
            raise WireError("label runs past the message")
        labels.append(data[offset : offset + length].decode("ascii", "replace").lower())
        offset += length
    return ".".join(labels), end if end is not None else offset


# -- records -------------------------------------------------------------------------------


def a_record(name: str, ip: str, ttl: int) -> Record:
    return Record(name, Rtype.A, ttl, ipaddress.IPv4Address(ip).packed)


def cname_record(name: str, target: str, ttl: int) -> Record:
    return Record(name, Rtype.CNAME, ttl, _encode_name(target))


def srv_record(name: str, priority: int, weight: int, port: int, target: str, ttl: int) -> Record:
    return Record(
        name, Rtype.SRV, ttl, struct.pack("!HHH", priority, weight, port) + _encode_name(target)
    )


def soa_record(zone: str, ttl: int, serial: int = 1) -> Record:
    """The zone's SOA; its last field (`minimum`) is how long a negative answer is kept."""
    rdata = (
        _encode_name(f"ns.dns.{zone}")
        + _encode_name(f"hostmaster.{zone}")
        + struct.pack("!IIIII", serial, 7200, 1800, 86400, ttl)
    )
    return Record(zone, Rtype.SOA, ttl, rdata)


def _encode_record(record: Record) -> bytes:
    return (
        _encode_name(record.name)
        + struct.pack("!HHIH", record.rtype, CLASS_IN, record.ttl, len(record.rdata))
        + record.rdata
    )


def _read_record(data: bytes, offset: int) -> tuple[str, int, int, int, int, int]:
    """(name, type, class, ttl, rdata offset, offset after the record)."""
    name, offset = _decode_name(data, offset)
    if offset + 10 > len(data):
        raise WireError("record runs past the message")
    rtype, rclass, ttl, length = struct.unpack_from("!HHIH", data, offset)
    offset += 10
    if offset + length > len(data):
        raise WireError("record data runs past the message")
    return name, rtype, rclass, ttl, offset, offset + length


# -- messages ------------------------------------------------------------------------------


def decode_query(data: bytes) -> Query:
    """The one question of a query (and the asker's EDNS buffer size, if it sent one)."""
    if len(data) < _HEADER.size:
        raise WireError("shorter than a DNS header")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if qdcount != 1:
        raise WireError(f"{qdcount} questions (only 1 is supported)")
    name, offset = _decode_name(data, _HEADER.size)
    if offset + 4 > len(data):
        raise WireError("question runs past the message")
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    offset += 4
    udp_size, edns = MAX_UDP_SIZE, False
    try:
        for _ in range(ancount + nscount + arcount):
            _, rtype, rclass, _, _, offset = _read_record(data, offset)
            if rtype == Rtype.OPT:
                edns = True
                udp_size = min(max(rclass, MAX_UDP_SIZE), _EDNS_CAP)
    except WireError:
        pass  # a broken additional section: answer the question anyway, without EDNS
    return Query(ident, flags, Question(name, qtype, qclass), udp_size, edns)


def encode_query(ident: int, question: Question, recursion: bool = True) -> bytes:
    """A query for `question` (what the server sends upstream to follow a CNAME)."""
    header = _HEADER.pack(ident, _RD if recursion else 0, 1, 0, 0, 0)
    return (
        header + _encode_name(question.name) + struct.pack("!HH", question.qtype, question.qclass)
    )


def encode_response(
    query: Query,
    rcode: int,
    answers: tuple[Record, ...] = (),
    authority: tuple[Record, ...] = (),
    additional: tuple[Record, ...] = (),
    *,
    authoritative: bool = True,
    max_size: int | None = None,
) -> bytes:
    """The answer to `query`. Past `max_size` bytes (UDP) records are dropped from the end,
    additional first, and TC is set when an answer or authority record had to go."""
    limit = max_size if max_size is not None else 65535
    q = query.question
    question = _encode_name(q.name) + struct.pack("!HH", q.qtype, q.qclass)
    opt = struct.pack("!BHHIH", 0, Rtype.OPT, _EDNS_CAP, 0, 0) if query.edns else b""
    sections: list[list[bytes]] = [
        [_encode_record(r) for r in answers],
        [_encode_record(r) for r in authority],
        [_encode_record(r) for r in additional],
    ]
    truncated = False
    size = _HEADER.size + len(question) + len(opt) + sum(len(r) for s in sections for r in s)
    for index in (2, 1, 0):
        while size > limit and sections[index]:
            size -= len(sections[index].pop())
            truncated = truncated or index < 2
    flags = _QR | (query.flags & (0x7800 | _RD)) | _RA | (rcode & 0xF)
    if authoritative:
        flags |= _AA
    if truncated:
        flags |= _TC
    header = _HEADER.pack(
        query.id,
        flags,
        1,
        len(sections[0]),
        len(sections[1]),
        len(sections[2]) + (1 if opt else 0),
    )
    return header + question + b"".join(r for s in sections for r in s) + opt


@dataclass(frozen=True)
class Response:
    id: int
    rcode: int
    answers: tuple[Record, ...]
    """A, AAAA and CNAME answers only (CNAME targets re-encoded without compression)."""


def decode_response(data: bytes) -> Response:
    """An upstream's answer, reduced to what the cluster DNS passes on after a CNAME."""
    if len(data) < _HEADER.size:
        raise WireError("shorter than a DNS header")
    ident, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    offset = _HEADER.size
    for _ in range(qdcount):
        _, offset = _decode_name(data, offset)
        offset += 4
    answers: list[Record] = []
    for _ in range(ancount):
        name, rtype, rclass, ttl, start, offset = _read_record(data, offset)
        if rclass != CLASS_IN:
            continue
        if rtype in (Rtype.A, Rtype.AAAA):
            answers.append(Record(name, rtype, ttl, data[start:offset]))
        elif rtype == Rtype.CNAME:
            target, _ = _decode_name(data, start)
            answers.append(cname_record(name, target, ttl))
    return Response(ident, flags & 0xF, tuple(answers))
