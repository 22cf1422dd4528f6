"""Full-text search figures at 1,000,000 interactions, on SQLite and on PostgreSQL.

Generates (once per folder/database; `--keep DIR` reuses it) N interactions of Finnish and
English mail and call-transcript text: a Zipf-distributed vocabulary of 20,000 Finnish-like
words, inflected forms of "lasku" (invoice) in most texts, and words planted at known rates
so every query class below has a known number of matches. Then serves Kirjuri in this
process on a free port and times `GET /api/v1/interactions?q=…&limit=50` (the first page,
newest first, with snippets and its audit row), p50/p95 over R requests per query class, and
the search alone as the API runs it (the page's ids and rows, and its snippets) in the same
process. Baselines in the same process: the same page without `q` (newest 50, no search).

Goal (issue 8): p95 <= 100 ms for every class, <= 20 ms for typical terms (rare, mid-frequency
and common words).

Usage: python bench/search.py [--rows N] [--requests R] [--backend sqlite|postgresql|both]
                              [--keep DIR] [--pg-url URL]
Without --pg-url, a PostgreSQL server is started in DIR (tests/postgres.py; durable, 2 GB of
shared buffers) and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench.ui_search import PASSWORD, bench_client  # noqa: E402
from service.appkeys import DB  # noqa: E402
from service.history import read_page  # noqa: E402
from storage.engine import Database  # noqa: E402
from storage.interactions import InteractionFilter  # noqa: E402
from storage.search import guess_language, parse_query  # noqa: E402

LASKU = ["lasku", "laskun", "laskuja", "laskut", "laskusta", "laskulle", "laskua", "laskuista"]
# planted words: (word, share of texts that contain it)
PLANTED = [
    ("eräpäivä", 0.10),
    ("muistutus", 0.01),
    ("korko", 0.01),
    ("konkurssi", 0.0001),
    ("ulosotto", 0.0001),
    ("kiitos", 0.40),
    ("invoice", 0.05),
    ("reminder", 0.01),
]
QUERIES = {
    "rare word (0.01%)": "konkurssi",
    "rare word, English (0.01%)": "ulosotto",
    "mid-frequency word (1%)": "muistutus",
    "common word (10%)": "eräpäivä",
    "very common word (~75%, inflected)": "lasku",
    "prefix of a very common word": "lasku*",
    "two mid-frequency words": "muistutus korko",
    "two common words": "lasku kiitos",
    "phrase": '"maksettu eräpäivä"',
    "no match": "zyxwvut",
}
TYPICAL = ("rare word (0.01%)", "rare word, English (0.01%)", "mid-frequency word (1%)", "common word (10%)")
SYLLABLES = [c + v for v in ("a", "e", "i", "o", "u", "ä") for c in "ktlsmnprv"]


def vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def texts(rows: int, seed: int = 8) -> Iterator[tuple[int, str, str, str]]:
    """(n, channel, subject, body) for each generated interaction."""
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(vocab))]
    cum = list(itertools.accumulate(weights))
    for n in range(rows):
        length = rng.randint(30, 160)
        words = rng.choices(vocab, cum_weights=cum, k=length)
        if rng.random() < 0.75:
            words.insert(rng.randrange(len(words) + 1), rng.choice(LASKU))
        for word, share in PLANTED:
            if rng.random() < share:
                words.insert(rng.randrange(len(words) + 1), word)
        if rng.random() < 0.02:
            words[0:0] = ["maksettu", "eräpäivä"]
        channel = "call" if n % 5 == 4 else "email"
        subject = "" if channel == "call" else f"Lasku {100000 + n}"
        yield n, channel, subject, " ".join(words)


START = datetime(2020, 1, 1)


def generate_sqlite(path: Path, rows: int) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    asyncio.run(db.open())
    asyncio.run(db.close())
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    t0 = time.perf_counter()
    batch: list[tuple[int, str, str, str]] = []

    def flush() -> None:
        conn.executemany(
            "INSERT INTO interactions (id, channel, direction, occurred_at, captured_at, subject, body, "
            "dedup_key, raw_size, needs_review, parse_errors, meta) "
            "VALUES (?, ?, 'in', ?, ?, ?, ?, ?, 0, 0, '[]', '{}')",
            [(n + 1, ch, _when(n), _when(n), subj, body, f"bench:{n}") for n, ch, subj, body in batch],
        )
        conn.executemany(
            "INSERT INTO participants (interaction_id, role, kind, value) VALUES (?, 'from', ?, ?)",
            [(n + 1, *_participant(n, ch)) for n, ch, _, _ in batch],
        )
        conn.executemany(
            "INSERT INTO interaction_fts (rowid, subject, body, participants) VALUES (?, ?, ?, ?)",
            [(n + 1, subj, body, _participant(n, ch)[1]) for n, ch, subj, body in batch],
        )
        conn.commit()
        batch.clear()

    for item in texts(rows):
        batch.append(item)
        if len(batch) == 10000:
            flush()
            if (item[0] + 1) % 100000 == 0:
                print(f"  sqlite: {item[0] + 1} rows ({time.perf_counter() - t0:.0f} s)", flush=True)
    flush()
    conn.execute("INSERT INTO interaction_fts(interaction_fts) VALUES ('optimize')")
    conn.execute("ANALYZE")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _when(n: int) -> str:
    # mostly in capture order, with one in fifty backdated by up to 30 days (imports, late calls)
    minutes = n * 2 - (((n * 7919) % 43200) if n % 50 == 0 else 0)
    return (START + timedelta(minutes=minutes)).isoformat(sep=" ")


def _participant(n: int, channel: str) -> tuple[str, str]:
    if channel == "call":
        return "phone", f"+3584{n % 50000:08d}"
    return "email", f"person{n % 50000}@example.org"


async def generate_postgresql(url: str, rows: int) -> None:
    import asyncpg

    db = Database(url)
    await db.open()
    await db.close()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("DROP INDEX IF EXISTS ix_interaction_fts_document")
        await conn.execute(
            "CREATE TEMP TABLE fts_load "
            "(rowid int, subject text, body text, participants text, language text)"
        )
        t0 = time.perf_counter()
        batch: list[tuple[int, str, str, str]] = []

        async def flush() -> None:
            await conn.copy_records_to_table(
                "interactions",
                columns=[
                    "id",
                    "channel",
                    "direction",
                    "occurred_at",
                    "captured_at",
                    "subject",
                    "body",
                    "dedup_key",
                    "raw_size",
                    "needs_review",
                    "parse_errors",
                    "meta",
                ],
                records=[
                    (n + 1, ch, "in", _at(n), _at(n), subj, body, f"bench:{n}", 0, False, "[]", "{}")
                    for n, ch, subj, body in batch
                ],
            )
            await conn.copy_records_to_table(
                "participants",
                columns=["interaction_id", "role", "kind", "value"],
                records=[(n + 1, "from", *_participant(n, ch)) for n, ch, _, _ in batch],
            )
            # as index_interactions does it: the text's language guessed, its tsvector in it
            await conn.copy_records_to_table(
                "fts_load",
                columns=["rowid", "subject", "body", "participants", "language"],
                records=[
                    (n + 1, subj, body, _participant(n, ch)[1], guess_language(f"{subj} {body}"))
                    for n, ch, subj, body in batch
                ],
            )
            await conn.execute(
                "INSERT INTO interaction_fts (rowid, subject, participants, language, document) "
                "SELECT rowid, subject, participants, language::regconfig, to_tsvector(language::regconfig, "
                "subject || ' ' || body || ' ' || participants) FROM fts_load"
            )
            await conn.execute("TRUNCATE fts_load")
            batch.clear()

        for item in texts(rows):
            batch.append(item)
            if len(batch) == 10000:
                await flush()
                if (item[0] + 1) % 100000 == 0:
                    print(f"  postgresql: {item[0] + 1} rows ({time.perf_counter() - t0:.0f} s)", flush=True)
        await flush()
        await conn.execute("SELECT setval('interactions_id_seq', (SELECT max(id) FROM interactions))")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("CREATE INDEX ix_interaction_fts_document ON interaction_fts USING gin (document)")
        await conn.execute("VACUUM ANALYZE")
        print(f"  postgresql: indexed ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        await conn.close()


def _at(n: int) -> datetime:
    return datetime.fromisoformat(_when(n)).replace(tzinfo=UTC)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(label: str, url: str, data: Path, requests: int) -> dict[str, Any]:
    client = await bench_client(data, url)
    results: dict[str, Any] = {}
    try:
        resp = await client.post("/api/v1/session", json={"username": "bench", "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {(await resp.json())['token']}"}

        async def timed(params: dict[str, str]) -> tuple[list[float], Any]:
            times, body = [], None
            for i in range(requests + 2):
                t = time.perf_counter()
                r = await client.get("/api/v1/interactions", params=params | {"limit": "50"}, headers=bearer)
                body = await r.json()
                assert r.status == 200, body
                if i >= 2:  # two warm-up requests
                    times.append((time.perf_counter() - t) * 1000)
            return times, body

        db = client.app[DB]

        async def searched(q: str | None) -> list[float]:
            """The search alone, as the API runs it (`read_page`: the query resolved, the
            page's ids and rows, and its snippets, in one read)."""
            flt = InteractionFilter(match=parse_query(q) if q else None)
            times = []
            for i in range(requests + 2):
                t = time.perf_counter()
                await read_page(db, flt, None, 50, snippets=True)
                if i >= 2:
                    times.append((time.perf_counter() - t) * 1000)
            return times

        base, _ = await timed({})
        b50 = statistics.median(base)
        sbase = await searched(None)
        s50 = statistics.median(sbase)
        print(
            f"\n{label}: baseline (newest 50, no search): API p50 {b50:.1f} / p95 {pct(base, 0.95):.1f} ms, "
            f"page alone p50 {s50:.1f} / p95 {pct(sbase, 0.95):.1f} ms"
        )
        print(
            f"{'query class':38} {'query':20} {'matches':>9} {'API p50':>8} {'p95':>7} {'ratio':>6}"
            f" {'search p50':>10} {'p95':>7} {'ratio':>6}"
        )
        for name, q in QUERIES.items():
            times, body = await timed({"q": q})
            alone = await searched(q)
            p50, p95 = statistics.median(times), pct(times, 0.95)
            a50, a95 = statistics.median(alone), pct(alone, 0.95)
            total = str(body.get("total")) + ("" if body.get("total_exact", True) else "+")
            print(
                f"{name:38} {q:20} {total:>9} {p50:8.1f} {p95:7.1f} {p50 / b50:6.2f}"
                f" {a50:10.1f} {a95:7.1f} {a50 / s50:6.2f}",
                flush=True,
            )
            results[name] = {
                "query": q,
                "matches": total,
                "api_p50_ms": p50,
                "api_p95_ms": p95,
                "search_p50_ms": a50,
                "search_p95_ms": a95,
            }
        results["baseline"] = {"api_p50_ms": b50, "api_p95_ms": pct(base, 0.95), "search_p50_ms": s50}
    finally:
        await client.close()
    for kind in ("api", "search"):
        worst = max(v[f"{kind}_p95_ms"] for k, v in results.items() if k != "baseline")
        typical = max(results[k][f"{kind}_p95_ms"] for k in TYPICAL)
        print(
            f"{label} {kind}: worst p95 {worst:.1f} ms (goal <= 100), "
            + f"typical words p95 {typical:.1f} ms (goal <= 20)"
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--keep", type=Path, help="folder for the generated stores (reused when present)")
    ap.add_argument("--pg-url", help="an empty (or earlier generated) PostgreSQL database to use")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="kirjuri-search-"))
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"rows": args.rows}
    if args.backend in ("sqlite", "both"):
        data = root / f"sqlite-{args.rows}"
        db_file = data / "kirjuri.db"
        if not db_file.exists():
            data.mkdir(parents=True, exist_ok=True)
            print(f"generating {args.rows} interactions in {db_file}", flush=True)
            generate_sqlite(db_file, args.rows)
        out["sqlite"] = asyncio.run(measure("SQLite", "", data, args.requests))
    if args.backend in ("postgresql", "both"):
        server = None
        url = args.pg_url
        if url is None:
            from tests.postgres import PostgresServer

            # durable (fsync and synchronous commit on, as in production), with 2 GB of
            # shared buffers as a 24 GB machine given to a database would have
            server = PostgresServer(
                root / f"postgresql-{args.rows}",
                durable=True,
                options="-c shared_buffers=2GB -c work_mem=16MB",
            )
            server.start(template=False)
            url = server.url("postgres")
        try:
            marker = root / f"postgresql-{args.rows}.generated"
            if args.pg_url is not None or not marker.exists():
                print(f"generating {args.rows} interactions in PostgreSQL", flush=True)
                asyncio.run(generate_postgresql(url, args.rows))
                marker.touch()
            data = root / "pg-data"
            data.mkdir(exist_ok=True)
            out["postgresql"] = asyncio.run(measure("PostgreSQL", url, data, args.requests))
        finally:
            if server is not None:
                server.stop(remove=args.keep is None)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
