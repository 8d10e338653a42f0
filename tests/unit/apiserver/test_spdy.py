"""SPDY/3.1 framing: bytes on the wire, round trips, header compression with the dictionary."""

from __future__ import annotations

import struct
import zlib

import pytest

from reconciler.apiserver import spdy

FRAMES: list[spdy.Frame] = [
    spdy.SynStream(1, {"streamtype": "error", "port": "8080", "requestid": "0"}),
    spdy.SynStream(3, {"streamtype": "data"}, flags=spdy.FLAG_FIN, associated_to=1, priority=7),
    spdy.SynReply(1),
    spdy.SynReply(5, {"x": "a\x00b"}, flags=spdy.FLAG_FIN),
    spdy.Headers(3, {"k": "v"}),
    spdy.RstStream(3, spdy.RstStatus.CANCEL),
    spdy.Settings(((0, 7, 65536), (1, 4, 100))),
    spdy.Ping(1),
    spdy.GoAway(7, spdy.GoAwayStatus.OK),
    spdy.WindowUpdate(3, 1024),
    spdy.Data(1, b"hello", spdy.FLAG_FIN),
    spdy.Data(3, b""),
    spdy.Data(0x7FFFFFFF, bytes(range(256)) * 100),
]


def test_the_dictionary_is_spdy3s() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    assert b"\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1" in (
        spdy.DICTIONARY
    )


def test_a_data_frame_on_the_wire() -> None:
    # 0 | stream id 1, flags FIN, length 2, payload.
    assert spdy.FrameWriter().encode(spdy.Data(1, b"hi", spdy.FLAG_FIN)) == bytes.fromhex(
        "00000001 01000002 6869"
    )


def test_control_frames_on_the_wire() -> None:
    writer = spdy.FrameWriter()
    # 1 | version 3 | type 6, flags 0, length 4, ping id.
    assert writer.encode(spdy.Ping(7)) == bytes.fromhex("80030006 00000004 00000007")
    assert writer.encode(spdy.RstStream(3, 5)) == bytes.fromhex(
        "80030003 00000008 00000003 00000005"
    )
    assert writer.encode(spdy.GoAway(9)) == bytes.fromhex("80030007 00000008 00000009 00000000")


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_round_trip(frame: spdy.Frame) -> None:
    assert spdy.FrameReader().feed(spdy.FrameWriter().encode(frame)) == [frame]


def test_a_connections_frames_round_trip_in_any_chunking() -> None:
    wire = spdy.encode_all(spdy.FrameWriter(), FRAMES)
    reader = spdy.FrameReader()
    decoded = [frame for i in range(len(wire)) for frame in reader.feed(wire[i : i + 1])]
    assert decoded == FRAMES
    reader = spdy.FrameReader()
    assert reader.feed(wire[:5000]) + reader.feed(wire[5000:]) == FRAMES


def test_header_blocks_are_one_zlib_stream_with_the_dictionary() -> None:
    writer = spdy.FrameWriter()
    first = writer.encode(spdy.SynStream(1, {"streamtype": "error", "port": "80"}))
    second = writer.encode(spdy.SynStream(3, {"streamtype": "data", "port": "80"}))
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    block = inflate.decompress(first[18:])
    assert block == (
        struct.pack(">I", 2)
        + struct.pack(">I", 10) + b"streamtype" + struct.pack(">I", 5) + b"error"
        + struct.pack(">I", 4) + b"port" + struct.pack(">I", 2) + b"80"
    )  # fmt: skip
    # The second block needs the first's context: a fresh decompressor cannot read it.
    assert spdy.decode_header_block(inflate.decompress(second[18:])) == {
        "streamtype": "data",
        "port": "80",
    }
    with pytest.raises(zlib.error):
        zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(second[18:])
    # The zlib header says "preset dictionary" (FDICT) with the dictionary's Adler-32.
    assert first[19] & 0x20 and first[20:24] == struct.pack(">I", zlib.adler32(spdy.DICTIONARY))


def test_header_names_go_out_lowercase() -> None:
    frame = spdy.FrameWriter().encode(spdy.SynReply(1, {"StreamType": "data"}))
    assert spdy.FrameReader().feed(frame) == [spdy.SynReply(1, {"streamtype": "data"})]


def test_unknown_control_frames_are_skipped_and_bad_input_is_refused() -> None:
    unknown = struct.pack(">HHI", 0x8003, 10, 2) + b"xx"  # type 10 (CREDENTIAL): ignored
    ping = spdy.FrameWriter().encode(spdy.Ping(2))
    assert spdy.FrameReader().feed(unknown + ping) == [spdy.Ping(2)]
    with pytest.raises(spdy.SpdyProtocolError, match="version 2"):
        spdy.FrameReader().feed(struct.pack(">HHI", 0x8002, 6, 4) + b"\0\0\0\1")
    with pytest.raises(spdy.SpdyProtocolError, match="decompress"):
        spdy.FrameReader().feed(struct.pack(">HHI", 0x8003, 2, 8) + b"\0\0\0\1garb")
