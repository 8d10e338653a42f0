"""Splicing two TCP connections, byte for byte: what the node-port proxy and the API
splice for pods do with each connection they accept."""

from __future__ import annotations

import asyncio

__all__ = ["pump", "splice"]

_CHUNK = 64 * 1024


async def pump(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, other: asyncio.StreamWriter
) -> None:
    """Copy until EOF, then half-close `dst`; on an error abort both sides."""
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except (ConnectionError, OSError):
        dst.transport.abort()
        other.transport.abort()


async def splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Both directions until both ends are done; closes the upstream side."""
    try:
        await asyncio.gather(pump(reader, up_writer, writer), pump(up_reader, writer, up_writer))
    finally:
        up_writer.close()
