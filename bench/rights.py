"""Subject-rights figures: access export and erasure of a subject with 10,000 interactions
(emails and calls) among 100,000.

Generates (once, in a temporary folder) 100,000 interactions stored as ingest stores them
(rows, participants, full-text index, raw blobs on disk; calls with 8 kHz audio and a
transcript): four subjects with 10,000 each (8,000 emails, 2,000 calls) and 60,000 others.
Then, each step in a fresh child process (so its peak memory is its own):
  1. export: the streamed ZIP of subject 1 (every call a distinct recording, 4 s = 64 KB by
     default), three runs; MB/s and peak RSS. Baseline in the same child: reading the same
     originals from the blob store into nothing (MB/s).
  2. erasure: subjects 2, 3 and 4 erased one after another (median of three), each with its
     blob removal and WAL truncation. Baseline in the same child: one plain DELETE of 10,000
     other interactions (secure_delete off, the search index left as it is: what deleting
     would cost if it did not have to leave no residue).
Goals (issue 5): erasure <= 2 s; export >= 50 MB/s with peak memory < 200 MB.
Usage: python bench/rights.py [--subject N] [--others N] [--call-seconds S] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from service.access import Principal  # noqa: E402
from service.export import export_zip  # noqa: E402
from service.marketing import Hasher  # noqa: E402
from service.register import load_register  # noqa: E402
from service.rights import RightsContext, add_months, erase_subject  # noqa: E402
from service.settings import RetentionSettings  # noqa: E402
from storage.blobs import BlobStore  # noqa: E402
from storage.customers import Customer, CustomerIdentifier  # noqa: E402
from storage.engine import Database  # noqa: E402
from storage.interactions import Interaction, NewInteraction, insert_interactions  # noqa: E402
from storage.rights import SubjectRequest  # noqa: E402
from storage.search import index_interactions  # noqa: E402
from storage.transcripts import SegmentRow, TranscriptRow, replace_transcript  # noqa: E402

WORDS = (
    "lasku eräpäivä rahoitus asiakas maksu sopimus tarjous kiitos huomenna viikko summa euroa "
    "tilisiirto muistutus yritys toimitus tilaus vastaus kysymys palvelu hinta korko invoice "
    "payment due reminder agreement thanks please regards tomorrow week amount transfer order"
).split()
PRIVACY = Principal("bench", "user", role="privacy")


def wav(seconds: float, seed: int) -> bytes:
    rng = random.Random(seed)
    frames = bytes(rng.getrandbits(8) for _ in range(int(8000 * seconds) * 2))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)
    return out.getvalue()


def text_of(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(data: Path, subject_size: int, others: int, call_seconds: float) -> None:
    """Four subjects of `subject_size` interactions (80% email, 20% calls) and `others`."""
    db = Database(f"sqlite+aiosqlite:///{data / 'kirjuri.db'}")
    asyncio.run(db.open())
    asyncio.run(db.close())
    blobs = BlobStore(data / "blobs")
    noise = wav(call_seconds, 1)  # 16 KB a second; each call's recording is made distinct below
    engine = Database(f"sqlite+aiosqlite:///{data / 'kirjuri.db'}")._sync_write
    rng = random.Random(5)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    plan: list[tuple[int | None, str, str | None]] = []  # (subject no, channel, email/phone)
    for s in range(1, 5):
        for k in range(subject_size):
            plan.append((s, "call" if k % 5 == 4 else "email", None))
    plan += [(None, "call" if k % 5 == 4 else "email", None) for k in range(others)]
    rng.shuffle(plan)
    with Session(engine) as session:
        for s in range(1, 5):
            c = Customer(name=f"Subject {s} Oy", identifiers=[])
            c.identifiers.append(CustomerIdentifier(kind="email", value=f"subject{s}@example.fi"))
            c.identifiers.append(CustomerIdentifier(kind="phone", value=f"+35840000000{s}"))
            session.add(c)
        session.commit()
    batch = 2000
    t0 = time.perf_counter()
    for offset in range(0, len(plan), batch):
        items, payloads = [], []
        for n, (s, channel, _) in enumerate(plan[offset : offset + batch], offset):
            who = f"subject{s}@example.fi" if s else f"person{n % 20000}@example.org"
            phone = f"+35840000000{s}" if s else f"+3584{n % 20000:08d}"
            body = text_of(rng, rng.randint(60, 200))
            if channel == "email":
                raw = (
                    f"From: <{who}>\r\nTo: <myynti@laskukassa.fi>\r\nSubject: Lasku {n}\r\n"
                    f"Message-ID: <{n}@bench>\r\n\r\n{body}\r\n"
                ).encode()
                participant = {"role": "from", "kind": "email", "value": who, "display_name": None}
            else:
                raw = noise[:44] + n.to_bytes(8, "big") + noise[52:]
                participant = {"role": "from", "kind": "phone", "value": phone, "display_name": None}
            payloads.append(raw)
            items.append((n, s, channel, raw, body, participant))
        names = blobs.put_many(payloads)
        rows = []
        for (n, s, channel, raw, body, participant), name in zip(items, names, strict=True):
            rows.append(
                NewInteraction(
                    values={
                        "channel": channel,
                        "direction": "in",
                        "occurred_at": start + timedelta(minutes=n),
                        "captured_at": start + timedelta(minutes=n),
                        "subject": f"Lasku {n}" if channel == "email" else "",
                        "body": body,
                        "message_id": None,
                        "dedup_key": f"bench:{n}",
                        "raw_blob": name,
                        "raw_size": len(raw),
                        "raw_content_type": "message/rfc822" if channel == "email" else "audio/wav",
                        "customer_id": s,
                        "link_method": participant["kind"] if s else None,
                        "needs_review": False,
                        "parse_errors": [],
                        "meta": {},
                    },
                    participants=[participant | {"customer_id": s}],
                    attachments=[],
                )
            )
        with Session(engine) as session:
            ids = insert_interactions(session, rows)
            index_interactions(
                session,
                [
                    (iid, r.values["subject"], r.values["body"], "")
                    for iid, r in zip(ids, rows, strict=True)
                    if iid
                ],
            )
            for iid, r in zip(ids, rows, strict=True):
                if iid and r.values["channel"] == "call":
                    segments = [
                        SegmentRow(i * 2.0, i * 2.0 + 2, "customer", text_of(rng, 8), -0.3) for i in range(3)
                    ]
                    replace_transcript(session, iid, TranscriptRow("fi", "bench", "1", 6.0, 1.0, segments))
            session.commit()
        done = offset + len(rows)
        if done % 20000 == 0:
            print(f"  generated {done} interactions ({time.perf_counter() - t0:.0f} s)", flush=True)
    with Session(engine) as session:
        for s in range(1, 5):
            session.add(
                SubjectRequest(
                    kind="access" if s == 1 else "erasure",
                    identifiers={"customer_id": s},
                    received_at=datetime.now(UTC),
                    due_at=add_months(datetime.now(UTC), 1),
                    status="open",
                    created_by="bench",
                )
            )
        session.commit()
    engine.dispose()


def context(data: Path, db: Database, executor: ThreadPoolExecutor) -> RightsContext:
    return RightsContext(
        db=db,
        blobs=BlobStore(data / "blobs"),
        executor=executor,
        hasher=Hasher(b"bench"),
        watch_dir="",
        register=load_register(""),
        retention=RetentionSettings(),
    )


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc. Not getrusage's ru_maxrss:
    Linux carries that over exec, so a spawned child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def read_all(paths: list[Path]) -> int:
    """Read files into nothing, in 1 MB pieces (the export's baseline)."""
    total = 0
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                total += len(chunk)
    return total


def export_child(data: str, runs: int, out: Any) -> None:
    async def main() -> dict[str, Any]:
        db = Database(f"sqlite+aiosqlite:///{Path(data) / 'kirjuri.db'}")
        await db.open()
        with ThreadPoolExecutor(4) as executor:
            ctx = context(Path(data), db, executor)
            start_rss = memory_mb("VmRSS")
            rates, sizes = [], []
            for _ in range(runs):
                t = time.perf_counter()
                size = 0
                async for chunk in export_zip(ctx, PRIVACY, 1):
                    size += len(chunk)
                rates.append(size / (time.perf_counter() - t) / 1e6)
                sizes.append(size)
            async with db.read() as session:
                blobs = list(
                    await session.scalars(select(Interaction.raw_blob).where(Interaction.customer_id == 1))
                )
            t = time.perf_counter()
            store = BlobStore(Path(data) / "blobs")
            raw = read_all([store.path(name) for name in blobs if name])
            raw_rate = raw / (time.perf_counter() - t) / 1e6
        await db.close()
        return {
            "rates": rates,
            "bytes": sizes[0],
            "raw_rate": raw_rate,
            "rss_start": start_rss,
            "rss_peak": memory_mb("VmHWM"),
        }

    out.send(asyncio.run(main()))


def erase_child(data: str, out: Any) -> None:
    async def main() -> dict[str, Any]:
        db = Database(f"sqlite+aiosqlite:///{Path(data) / 'kirjuri.db'}")
        await db.open()
        results = []
        with ThreadPoolExecutor(4) as executor:
            ctx = context(Path(data), db, executor)
            for request_id in (2, 3, 4):
                t = time.perf_counter()
                report = await erase_subject(ctx, PRIVACY, request_id)
                results.append({"seconds": time.perf_counter() - t, "erased": report["erased"]})

        # baseline: one plain DELETE of 10,000 other interactions (the lowest ids left)
        def plain(session: Session) -> float:
            session.execute(text("PRAGMA secure_delete=OFF"))
            ids = [
                r[0]
                for r in session.execute(
                    text("SELECT id FROM interactions WHERE customer_id IS NULL ORDER BY id LIMIT 10000")
                )
            ]
            t = time.perf_counter()
            session.execute(
                text("DELETE FROM interactions WHERE id IN (SELECT value FROM json_each(:ids))"),
                {"ids": json.dumps(ids)},
            )
            return time.perf_counter() - t

        baseline = await db.run_write(plain)
        await db.close()
        return {"runs": results, "baseline": baseline}

    out.send(asyncio.run(main()))


def in_child(target: Any, *args: Any) -> Any:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, child))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subject", type=int, default=10000, help="interactions per subject")
    parser.add_argument("--others", type=int, default=60000, help="interactions of nobody in particular")
    parser.add_argument("--call-seconds", type=float, default=4.0, help="length of each call recording")
    parser.add_argument("--keep", help="generate into (or reuse) this folder")
    parser.add_argument(
        "--export-only", action="store_true", help="skip the erasure (to rerun on --keep data)"
    )
    args = parser.parse_args()
    data = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kirjuri-rights-"))
    if not (data / "kirjuri.db").exists():
        data.mkdir(parents=True, exist_ok=True)
        total = 4 * args.subject + args.others
        print(f"generating {total} interactions in {data} ...", flush=True)
        generate(data, args.subject, args.others, args.call_seconds)
    export = in_child(export_child, str(data), 3)
    median = statistics.median(export["rates"])
    size = export["bytes"] / 1e6
    runs = ", ".join(f"{r:.0f}" for r in export["rates"])
    print(f"\nexport of a subject with {args.subject} interactions ({size:.0f} MB ZIP), 3 runs:")
    print(f"  rate: median {median:.0f} MB/s (runs {runs})")
    raw_rate = export["raw_rate"]
    print(f"  baseline, reading the same originals: {raw_rate:.0f} MB/s; ratio {median / raw_rate:.2f}")
    peak, base = export["rss_peak"], export["rss_start"]
    print(f"  peak RSS of the exporting process: {peak:.0f} MB (after start-up {base:.0f} MB)")
    if args.export_only:
        return
    erase = in_child(erase_child, str(data))
    seconds = [r["seconds"] for r in erase["runs"]]
    among = 4 * args.subject + args.others
    print(f"\nerasure of a subject with {args.subject} interactions among {among}, 3 subjects:")
    print(f"  median {statistics.median(seconds):.2f} s (runs {', '.join(f'{t:.2f}' for t in seconds)})")
    print(f"  erased per run: {erase['runs'][0]['erased']}")
    print(
        f"  baseline, one plain DELETE of 10,000 rows (no secure_delete, index left): "
        f"{erase['baseline']:.2f} s; ratio {statistics.median(seconds) / erase['baseline']:.1f}"
    )


if __name__ == "__main__":
    main()
