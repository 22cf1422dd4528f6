"""The watched call folder: a recording with its sidecar is taken once it has settled and
filed in processed/; a bad one lands in failed/ with the reason; a restart neither loses a
file nor stores one twice."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from service.settings import Settings
from tests.conftest import Kirjuri, until
from tests.speech import mono_call


def folder_settings(settings: Settings, folder: Path, settle: float = 0.3) -> Settings:
    return settings.replace("transcription", enabled=False).replace(
        "calls", watch_dir=str(folder), settle_seconds=settle, poll_seconds=0.1
    )


async def wait_for(path: Path, limit: float = 20) -> None:
    await until(lambda: asyncio.to_thread(path.exists), limit=limit, what=f"{path} to appear")


async def calls(kirjuri: Kirjuri, headers: dict[str, str]) -> list[Any]:
    return list((await kirjuri.get_json("/api/v1/interactions?channel=call", headers))["items"])


def drop(folder: Path, name: str, audio: bytes, meta: dict[str, Any] | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if meta is not None:
        (folder / f"{Path(name).stem}.json").write_text(json.dumps(meta))
    (folder / name).write_bytes(audio)


async def test_settled_recordings_are_taken_and_filed(
    kirjuri_factory: Any, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "pbx"
    kirjuri = await kirjuri_factory(folder_settings(settings, folder))
    headers = await kirjuri.login("agent")
    audio = mono_call("Hei, tässä testi.", "fi", tmp_path / "a.wav").read_bytes()
    meta = {"external_id": "pbx-9", "direction": "out", "from": "+358942424242", "to": "045 125 4423"}
    drop(folder, "rec-9.wav", audio, meta)
    drop(folder, "notes.doc", b"\xd0\xcf\x11\xe0 not audio", None)
    drop(folder, "rec-10.wav", audio[:40], {"external_id": "pbx-10", "started_at": "not a time"})

    # a file is moved last, after its error note and its sidecar
    await wait_for(folder / "processed" / "rec-9.wav")
    await wait_for(folder / "failed" / "notes.doc")
    await wait_for(folder / "failed" / "rec-10.wav")
    assert (folder / "processed" / "rec-9.json").exists()
    assert (folder / "processed" / "rec-9.wav").read_bytes() == audio
    assert "accepted audio format" in (folder / "failed" / "notes.doc.error.txt").read_text()
    assert "started_at" in (folder / "failed" / "rec-10.wav.error.txt").read_text()
    assert (folder / "failed" / "rec-10.json").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["failed", "processed"]

    stored = await calls(kirjuri, headers)
    assert len(stored) == 1
    call = await kirjuri.get_json(f"/api/v1/interactions/{stored[0]['id']}", headers)
    assert call["meta"]["external_id"] == "pbx-9"
    assert call["direction"] == "out"
    assert {(p["role"], p["value"]) for p in call["participants"]} == {
        ("from", "+358942424242"),
        ("to", "+358451254423"),
    }


async def test_a_restart_neither_loses_nor_repeats_a_recording(
    kirjuri_factory: Any, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "pbx"
    audio = mono_call("Hei.", "fi", tmp_path / "a.wav").read_bytes()
    drop(folder, "rec-1.wav", audio, None)  # no sidecar: known by its bytes

    # stopped before the file settled: nothing taken, nothing lost
    first = await kirjuri_factory(folder_settings(settings, folder, settle=60))
    headers = await first.login("agent")
    await asyncio.sleep(0.5)
    assert await calls(first, headers) == []
    await first.client.close()
    assert (folder / "rec-1.wav").read_bytes() == audio

    second = await kirjuri_factory(folder_settings(settings, folder))
    await wait_for(folder / "processed" / "rec-1.wav")
    assert len(await calls(second, headers)) == 1

    # a crash after the store but before the move leaves the file in place: taken again,
    # it is recognised as the call already stored and only filed away
    shutil.copy(folder / "processed" / "rec-1.wav", folder / "rec-1.wav")
    await wait_for(folder / "processed" / "rec-1-1.wav")
    assert not (folder / "rec-1.wav").exists()
    assert len(await calls(second, headers)) == 1
