"""SMTP ingest figures: Kirjuri (durable: blob + dir fsync, WAL synchronous=FULL) against a bare
aiosmtpd that only answers 250, on the same machine in the same run.

Prints, for each server:
  1. throughput: 20 concurrent clients sending 5-10 KB messages as fast as replies come
     (messages/s, p50/p95 latency), and Kirjuri's ratio to the bare server;
  2. latency at a steady 100 msg/s offered load (p50/p95);
  3. small-message latency while one 20 MB message (text and a 15 MB base64 attachment) is
     received (p50/p95 against the same load without it), to show parsing and storing stay
     off the event loop.
Each server runs in its own process; the load generator is a minimal asyncio SMTP client.
`--storage postgresql` (or `both`) also runs Kirjuri on a PostgreSQL server this script starts
(Debian's postgresql; durable: fsync and synchronous commit on), in the same run.
Usage: python bench/smtp_ingest.py [--messages N] [--rounds R] [--processes P]
                                   [--storage sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "lasku eräpäivä rahoitus asiakas maksu sopimus tarjous kiitos huomenna viikko summa euroa "
    "tilisiirto muistutus yritys toimitus tilaus vastaus kysymys palvelu hinta korko"
).split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def message(n: int, size: int, rng: random.Random) -> bytes:
    words: list[str] = []
    length = 0
    while length < size:
        w = rng.choice(WORDS)
        words.append(w)
        length += len(w) + 1
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    body = "\r\n".join(lines)
    head = (
        f"From: Asiakas {n} <asiakas{n % 500}@example.fi>\r\nTo: myynti@laskukassa.fi\r\n"
        f"Subject: Viesti {n}\r\nMessage-ID: <bench-{n}-{rng.random()}@example.fi>\r\n"
        "Date: Tue, 24 Nov 2026 10:00:00 +0200\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return (head + body + "\r\n").encode()


def big_message(rng: random.Random) -> bytes:
    """About 20 MB on the wire: a short text and a 15 MB attachment, base64 as mail carries it."""
    import base64

    data = base64.encodebytes(rng.randbytes(15 * 1024 * 1024)).replace(b"\n", b"\r\n")
    head = (
        "From: Asiakas <asiakas@example.fi>\r\nTo: myynti@laskukassa.fi\r\nSubject: Iso liite\r\n"
        f"Message-ID: <big-{rng.random()}@example.fi>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0200\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLiitteena skannatut laskut.\r\n"
        "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=laskut.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return head + data + b"--b--\r\n"


class Client:
    """One SMTP connection; `send` returns the seconds from MAIL FROM to the final reply."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=2**20)
        await self.reply()
        self.writer.write(b"EHLO bench\r\n")
        await self.reply()

    async def reply(self) -> int:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            if line[3:4] != b"-":
                return int(line[:3])

    async def send(self, data: bytes) -> float:
        start = time.perf_counter()
        self.writer.write(b"MAIL FROM:<bench@example.fi>\r\nRCPT TO:<journal@localhost>\r\nDATA\r\n")
        codes = [await self.reply() for _ in range(3)]
        if codes != [250, 250, 354]:
            raise RuntimeError(f"unexpected replies {codes}")
        self.writer.write(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        await self.writer.drain()
        code = await self.reply()
        if code != 250:
            raise RuntimeError(f"DATA answered {code}")
        return time.perf_counter() - start

    async def close(self) -> None:
        self.writer.write(b"QUIT\r\n")
        self.writer.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def throughput(port: int, total: int, clients: int, rng: random.Random) -> tuple[float, list[float]]:
    msgs = [message(i, rng.randint(5000, 10000), rng) for i in range(total)]
    conns = [Client(port) for _ in range(clients)]
    await asyncio.gather(*(c.connect() for c in conns))
    latencies: list[float] = []
    queue = iter(msgs)

    async def worker(c: Client) -> None:
        for m in queue:
            latencies.append(await c.send(m))

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(c.close() for c in conns))
    return total / elapsed, latencies


async def steady(
    port: int, rate: float, seconds: float, clients: int, rng: random.Random, big: bytes | None = None
) -> tuple[list[float], float]:
    """Offer `rate` msg/s for `seconds`; optionally one big message on its own connection."""
    conns = [Client(port) for _ in range(clients)]
    await asyncio.gather(*(c.connect() for c in conns))
    free: asyncio.Queue[Client] = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)
    latencies: list[float] = []
    big_time = 0.0

    async def one(n: int) -> None:
        c = await free.get()
        latencies.append(await c.send(message(n, rng.randint(5000, 10000), rng)))
        free.put_nowait(c)

    async def send_big() -> None:
        nonlocal big_time
        c = Client(port)
        await c.connect()
        big_time = await c.send(big or b"")
        await c.close()

    tasks = []
    big_task = asyncio.create_task(send_big()) if big else None
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        tasks.append(asyncio.create_task(one(10_000_000 + n)))
        n += 1
        await asyncio.sleep(max(0.0, n / rate - (time.perf_counter() - start)))
    await asyncio.gather(*tasks)
    if big_task:
        await big_task
    await asyncio.gather(*(c.close() for c in conns))
    return latencies, big_time


def start_kirjuri(data_dir: str, processes: int, url: str = "") -> tuple[subprocess.Popen[bytes], int]:
    port, http = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--data-dir",
            data_dir,
            "--http-port",
            str(http),
            "--smtp-port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ
        | {
            "KIRJURI_LOGGING_LEVEL": "WARNING",
            "KIRJURI_SMTP_MAX_CONNECTIONS": "200",
            "KIRJURI_SMTP_PROCESSES": str(processes),
        }
        | ({"KIRJURI_STORAGE_URL": url} if url else {}),
    )
    wait_port(port, proc)
    for _ in range(300):  # the extra SMTP processes start once the first one is up
        if len(children(proc.pid)) >= processes - 1:
            break
        time.sleep(0.1)
    time.sleep(3)  # and need a moment to open the database and listen
    return proc, port


def children(pid: int) -> list[int]:
    """Ids of the processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def start_bare() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_smtp.py"), str(port)], stdout=subprocess.DEVNULL
    )
    wait_port(port, proc)
    return proc, port


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("server died on start") from None
            time.sleep(0.1)
    raise SystemExit("server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


async def bench(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        servers = {"bare aiosmtpd": start_bare()}
        pg = None
        if args.storage in ("sqlite", "both"):
            servers["kirjuri"] = start_kirjuri(f"{tmp}/sqlite", args.processes)
        if args.storage in ("postgresql", "both"):
            sys.path.insert(0, str(ROOT))
            from tests.postgres import PostgresServer

            pg = PostgresServer(durable=True)  # its own folder: the postgres user must reach it
            pg.start(template=False)
            pg.sql("CREATE DATABASE kirjuri")
            servers["kirjuri pg"] = start_kirjuri(f"{tmp}/pg-data", args.processes, pg.url("kirjuri"))
        kirjuris = [name for name in servers if name.startswith("kirjuri")]
        try:
            rates: dict[str, list[float]] = {name: [] for name in servers}
            lats: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(args.rounds):  # interleave the two so drift hits both alike
                for name, (_, port) in servers.items():
                    rate, latency = await throughput(port, args.messages, 20, rng)
                    rates[name].append(rate)
                    lats[name].extend(latency)
            print(
                f"kirjuri ({', '.join(kirjuris)}) with [smtp] processes = {args.processes}, "
                f"on {os.cpu_count()} cores"
            )
            print(
                f"1. throughput, 20 concurrent clients, 5-10 KB messages, {args.rounds} rounds of "
                f"{args.messages} (median of rounds)"
            )
            for name in servers:
                rounds = " ".join(f"{r:.0f}" for r in rates[name])
                print(
                    f"   {name:14} {statistics.median(rates[name]):7.0f} msg/s ({rounds})   "
                    f"p50 {pct(lats[name], 0.5):6.1f} ms   p95 {pct(lats[name], 0.95):6.1f} ms"
                )
            for name in kirjuris:
                ratio = statistics.median(rates[name]) / statistics.median(rates["bare aiosmtpd"])
                print(f"   ratio {name} / bare: {ratio:.2f}")

            print("2. steady 100 msg/s offered for 10 s, 20 connections")
            for name, (_, port) in servers.items():
                latency, _ = await steady(port, 100, 10, 20, rng)
                print(
                    f"   {name:14} p50 {pct(latency, 0.5):6.1f} ms   p95 {pct(latency, 0.95):6.1f} ms   "
                    f"({len(latency)} messages)"
                )

            print("3. 50 msg/s of small messages for 8 s, without and with one 20 MB message arriving")
            big = big_message(rng)
            for name, (_, port) in servers.items():
                alone, _ = await steady(port, 50, 8, 10, rng)
                during, big_time = await steady(port, 50, 8, 10, rng, big=big)
                print(f"   {name:14} alone   p50 {pct(alone, 0.5):6.1f} ms   p95 {pct(alone, 0.95):6.1f} ms")
                print(
                    f"   {name:14} + 20 MB p50 {pct(during, 0.5):6.1f} ms   "
                    f"p95 {pct(during, 0.95):6.1f} ms   (20 MB message answered in {big_time:.2f} s)"
                )
        finally:
            for proc, _ in servers.values():
                stop(proc)
            if pg is not None:
                pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="Kirjuri's [smtp] processes"
    )
    parser.add_argument("--tmp", default=str(ROOT / "var"), help="where Kirjuri's data dir is made")
    parser.add_argument("--storage", choices=("sqlite", "postgresql", "both"), default="sqlite")
    args = parser.parse_args()
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
