"""Responses the JSON API and the web UI send alike: a streamed ZIP, an original's bytes, and
a recording served in ranges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Executor

from aiohttp import web

from storage.blobs import Blobs


async def stream_zip(request: web.Request, filename: str, chunks: AsyncIterator[bytes]) -> web.StreamResponse:
    """Stream a ZIP as it is made. The headers go out with the first piece, so an error raised
    before it (not found, not allowed) is still answered as an error, not a broken download."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        }
    )
    async for chunk in chunks:
        if not response.prepared:
            await response.prepare(request)
        if chunk:
            await response.write(chunk)
    await response.write_eof()
    return response


def original(interaction_id: int, data: bytes, content_type: str) -> web.Response:
    """An interaction's raw original as a download (`.eml` for mail)."""
    extension = ".eml" if content_type == "message/rfc822" else ""
    return web.Response(
        body=data,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="interaction-{interaction_id}{extension}"'},
    )


async def blob_ranges(
    request: web.Request, blobs: Blobs, executor: Executor, name: str, headers: Mapping[str, str]
) -> web.StreamResponse:
    """A blob streamed from whichever store holds it, honouring a single `Range` (a player
    seeking in a recording): 206 with the part asked for, 416 for a range past the end."""
    loop = asyncio.get_running_loop()
    size = await loop.run_in_executor(executor, blobs.size, name)
    start, stop, status = 0, size, 200
    if request.headers.get("Range"):
        try:
            asked = request.http_range
        except ValueError:
            asked = None  # a form this does not serve (several ranges): the whole blob
        if asked is not None and (asked.start is not None or asked.stop is not None):
            first = asked.start if asked.start is not None else 0
            start = max(0, size + first) if first < 0 else first
            stop = min(size, asked.stop) if asked.stop is not None else size
            if start >= size or start >= stop:
                raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
            status = 206
    response = web.StreamResponse(status=status, headers={**headers, "Accept-Ranges": "bytes"})
    response.content_length = stop - start
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    await response.prepare(request)
    if request.method != "HEAD":
        reader = await loop.run_in_executor(executor, blobs.open, name, start)
        try:
            left = stop - start
            while left > 0:
                chunk = await loop.run_in_executor(executor, reader.read, min(CHUNK, left))
                if not chunk:
                    break
                await response.write(chunk)
                left -= len(chunk)
        finally:
            await loop.run_in_executor(executor, reader.close)
    await response.write_eof()
    return response


CHUNK = 256 * 1024
