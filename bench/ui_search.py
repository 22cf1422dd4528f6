"""Web UI search figures: the /search page on a store of about 100,000 interactions.

Uses a data folder made by `bench/rights.py --keep DIR` (generated there if missing), starts
Kirjuri in this process on a free port, logs in through the login form as a real browser
would (cookie session), and times GET /search for a very common word, a mid-frequency word,
a word that matches nothing, a two-word query and a customer's email address: p50/p95 over
N requests each, with the JSON API's `/api/v1/interactions?q=` for the same query (same
process, same data) as the baseline. Goal (issue 6): "fast on 100k interactions".
Usage: python bench/ui_search.py [--data DIR] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from service.access import create_user  # noqa: E402
from service.app import create_app, freeze_startup_heap  # noqa: E402
from service.appkeys import DB  # noqa: E402
from service.settings import Secret, Settings, load_settings  # noqa: E402
from storage.errors import Conflict  # noqa: E402

QUERIES = {
    "very common word": "lasku",
    "mid-frequency word": "tilisiirto",
    "no match": "zyxwvut",
    "two words": "muistutus korko",
    "a customer's name": "Subject 1 Oy",
}
PASSWORD = "bench password 1"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def api_only_settings(data: Path, url: str = "") -> Settings:
    """Kirjuri serving HTTP only on a bench store (no SMTP, transcription, detection, retention)."""
    return (
        load_settings(environ={})
        .replace("storage", data_dir=str(data), url=Secret(url))
        .replace("smtp", enabled=False)
        .replace("transcription", enabled=False)
        .replace("marketing", enabled=False)
        .replace("retention", enabled=False)
    )


async def bench_client(data: Path, url: str = "") -> TestClient[Any, Any]:
    """Kirjuri (HTTP only) on a bench store, serving on a free port, with the agent "bench"."""
    app = create_app(api_only_settings(data, url))
    app.on_startup.append(freeze_startup_heap)  # as `kirjuri serve` does
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    with ThreadPoolExecutor(1) as executor:
        try:
            await create_user(app[DB], executor, "bench", "agent", PASSWORD)
        except Conflict:
            pass
    return client


async def main(data: Path, requests: int) -> None:
    client = await bench_client(data)
    try:
        page = await (await client.get("/login")).text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        resp = await client.post(
            "/login",
            data={"csrf": csrf.group(1), "username": "bench", "password": PASSWORD, "next": "/search"},
        )
        assert resp.status == 200 and "bench" in await resp.text(), "login failed"
        api = await client.post("/api/v1/session", json={"username": "bench", "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {(await api.json())['token']}"}
        widths = (22, 9, 9, 8, 8, 6)
        header = ("query", "page p50", "page p95", "API p50", "API p95", "ratio")
        print(
            " ".join(
                f"{h:{'>' if i else '<'}{w}}" for i, (h, w) in enumerate(zip(header, widths, strict=True))
            ),
            " results",
        )
        for label, q in QUERIES.items():
            times: dict[str, list[float]] = {"page": [], "api": []}
            total = 0
            for _ in range(requests):
                for kind in ("page", "api"):
                    t = time.perf_counter()
                    if kind == "page":
                        r = await client.get("/search", params={"q": q})
                        await r.read()
                    else:
                        r = await client.get(
                            "/api/v1/interactions", params={"q": q, "limit": 25}, headers=bearer
                        )
                        total = (await r.json())["total"]
                    assert r.status == 200, await r.text()
                    times[kind].append((time.perf_counter() - t) * 1000)
            p50, a50 = statistics.median(times["page"]), statistics.median(times["api"])
            print(
                f"{label:22} {p50:8.0f}ms {pct(times['page'], 0.95):8.0f}ms {a50:7.0f}ms "
                f"{pct(times['api'], 0.95):7.0f}ms {p50 / a50:6.2f}  {total}"
            )
    finally:
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/kirjuri-bench-rights", help="a bench/rights.py --keep folder")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    folder = Path(args.data)
    if not (folder / "kirjuri.db").exists():
        rights = [sys.executable, str(ROOT / "bench" / "rights.py"), "--keep", str(folder), "--export-only"]
        subprocess.run(rights, check=True)  # generates 100,000 interactions, erases none
    asyncio.run(main(folder, args.requests))
