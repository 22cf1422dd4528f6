"""Baseline for bench/smtp_ingest.py: aiosmtpd with a handler that only answers 250."""

from __future__ import annotations

import asyncio
import sys
from functools import partial

from aiosmtpd.smtp import SMTP


class Bare:
    async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str:
        return "250 OK"


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        partial(SMTP, Bare(), data_size_limit=32 * 1024 * 1024), "127.0.0.1", port
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
