"""Responses the JSON API and the web UI send alike: a streamed ZIP and an original's bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


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
