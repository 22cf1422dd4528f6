"""Call recordings over HTTP: real speech in, real Whisper (the bundled base model) out,
speaker labels from the channels, the call on the customer's timeline; bad audio refused
with nothing stored; the same external id stored once; the recording served back with Range."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiohttp import FormData
from sqlalchemy import select

from service.appkeys import BLOBS, DB
from service.settings import Settings
from storage.audit import AuditFilter, list_entries
from storage.interactions import Interaction
from tests.conftest import Kirjuri, with_s3_blobs
from tests.plugins import kirjuri_test_plugin as test_plugin
from tests.s3 import S3Server
from tests.speech import Turn, heard, mono_call, phone_call
from tests.whisper_checkpoint import ct2_to_openai_checkpoint

CUSTOMER_PHONE = "+358451254423"


@pytest.fixture
def call_settings(settings: Settings, whisper_dir: Path) -> Settings:
    return settings.replace("transcription", model=str(whisper_dir), workers=1, retry_seconds=0)


@pytest.fixture
def quiet_settings(settings: Settings) -> Settings:
    """Calls stored but not transcribed: for tests of the upload itself."""
    return settings.replace("transcription", enabled=False)


def metadata(external_id: str = "pbx-1", **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "direction": "in",
        "from": "045 125 4423",
        "to": "+358 9 4242 4242",
        "started_at": "2026-11-24T09:15:00+02:00",
        "agent": "Maija Myyjä",
        "channel_layout": "stereo",
    } | extra


async def upload(
    kirjuri: Kirjuri, headers: dict[str, str], audio: bytes, meta: dict[str, Any], name: str = "call.wav"
) -> tuple[int, dict[str, Any]]:
    form = FormData()
    form.add_field("metadata", json.dumps(meta), content_type="application/json")
    form.add_field("audio", audio, filename=name, content_type="application/octet-stream")
    resp = await kirjuri.client.post("/api/v1/calls", data=form, headers=headers)
    return resp.status, await resp.json(content_type=None)


async def wait_until_settled(kirjuri: Kirjuri, headers: dict[str, str], iid: int, limit: float = 300) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        call = await kirjuri.get_json(f"/api/v1/interactions/{iid}", headers)
        if call["status"] in ("done", "failed"):
            return call
        await asyncio.sleep(0.5)
    raise AssertionError(f"call {iid} was not transcribed in {limit} s")


async def add_customer(kirjuri: Kirjuri, headers: dict[str, str]) -> int:
    resp = await kirjuri.client.post(
        "/api/v1/customers",
        json={"name": "Aino Asiakas Oy", "phones": [CUSTOMER_PHONE]},
        headers=headers,
    )
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


async def test_finnish_stereo_call_is_transcribed_with_speakers_onto_the_customer_timeline(
    kirjuri_factory: Any, call_settings: Settings, tmp_path: Path
) -> None:
    test_plugin.EVENTS.clear()  # the test plugin sees every event, as a webhook would
    kirjuri = await kirjuri_factory(call_settings.replace("plugins", modules=[test_plugin.__name__]))
    headers = await kirjuri.login("agent")
    customer_id = await add_customer(kirjuri, headers)
    recording = phone_call(
        [
            Turn("agent", "Laskukassa, hyvää päivää, täällä Maija."),
            Turn("customer", "Hei. Soitan laskun numero kaksikymmentäkolme takia."),
            Turn("agent", "Selvä, katson heti."),
            Turn("customer", "Ja kiellän suoramarkkinoinnin."),
        ],
        tmp_path / "call.wav",
    )
    status, receipt = await upload(kirjuri, headers, recording.read_bytes(), metadata())
    assert status == 202, receipt
    assert receipt["status"] == "queued"
    iid = receipt["interaction_id"]

    call = await wait_until_settled(kirjuri, headers, iid)
    assert call["status"] == "done", call["transcription"]
    assert call["channel"] == "call"
    assert call["customer_id"] == customer_id
    assert call["transcription"]["language"] == "fi"
    speakers = {s["speaker"] for s in call["segments"]}
    assert speakers == {"agent", "customer"}
    said = {
        who: " ".join(s["text"] for s in call["segments"] if s["speaker"] == who).lower() for who in speakers
    }
    # the base model misspells Finnish now and then, so `heard` allows a letter or two
    assert heard("suoramarkkinoinnin", said["customer"])
    assert heard("numero", said["customer"])
    assert heard("laskukassa", said["agent"])
    assert not heard("suoramarkkinoinnin", said["agent"])
    starts = [s["start"] for s in call["segments"]]
    assert starts == sorted(starts)
    # the agent spoke first, then the customer: the channels tell who is who
    assert call["segments"][0]["speaker"] == "agent"

    timeline = await kirjuri.get_json(f"/api/v1/interactions?customer_id={customer_id}", headers)
    assert [i["id"] for i in timeline["items"]] == [iid]
    found = await kirjuri.get_json("/api/v1/interactions?q=suoramarkkino*", headers)
    assert [i["id"] for i in found["items"]] == [iid]
    transcribed = [e["data"] for e in test_plugin.EVENTS if e["type"] == "interaction.transcribed"]
    assert transcribed == [{"interaction_id": iid, "customer_id": customer_id, "language": "fi"}]


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("en", "Hello, I am calling about my invoice. Please call me tomorrow.", ["invoice", "tomorrow"]),
        # with the Swedish hotwords (the default config) the base model hears "faktura", which
        # it heard as "att du ram" without them, and drops the greeting
        ("sv", "Hej, jag ringer om fakturan.", ["jag", "ringer", "faktura"]),
    ],
)
async def test_english_and_swedish_mono_calls(
    kirjuri_factory: Any,
    call_settings: Settings,
    tmp_path: Path,
    language: str,
    text: str,
    expected: list[str],
) -> None:
    kirjuri = await kirjuri_factory(call_settings)
    headers = await kirjuri.login("agent")
    recording = mono_call(text, language, tmp_path / "mono.wav", encoding="a-law")
    status, receipt = await upload(
        kirjuri, headers, recording.read_bytes(), metadata(channel_layout="mono", language=language)
    )
    assert status == 202, receipt
    call = await wait_until_settled(kirjuri, headers, receipt["interaction_id"])
    assert call["status"] == "done", call["transcription"]
    assert call["transcription"]["language"] == language
    assert {s["speaker"] for s in call["segments"]} == {"unknown"}
    said = " ".join(s["text"] for s in call["segments"]).lower()
    for word in expected:
        assert heard(word, said), said


async def test_a_call_kept_in_an_s3_bucket_is_transcribed_and_played_back(
    kirjuri_factory: Any, call_settings: Settings, tmp_path: Path, s3_server: S3Server
) -> None:
    configured, bucket = with_s3_blobs(call_settings, s3_server)
    kirjuri = await kirjuri_factory(configured)
    headers = await kirjuri.login("agent")
    text = "Hello, I am calling about my invoice. Please call me tomorrow."
    recording = mono_call(text, "en", tmp_path / "mono.wav").read_bytes()
    status, receipt = await upload(
        kirjuri, headers, recording, metadata(channel_layout="mono", language="en")
    )
    assert status == 202, receipt
    iid = receipt["interaction_id"]
    call = await wait_until_settled(kirjuri, headers, iid)
    assert call["status"] == "done", call["transcription"]
    said = " ".join(s["text"] for s in call["segments"]).lower()
    assert heard("invoice", said), said
    assert s3_server.stored(bucket) == [f"blobs/{hashlib.sha256(recording).hexdigest()}"]

    # played back from the bucket: whole, a range, the last bytes, and past the end
    audio = f"/api/v1/interactions/{iid}/audio"
    resp = await kirjuri.client.get(audio, headers=headers)
    assert resp.status == 200 and await resp.read() == recording
    resp = await kirjuri.client.get(audio, headers=headers | {"Range": "bytes=100-199"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 100-199/{len(recording)}"
    assert await resp.read() == recording[100:200]
    resp = await kirjuri.client.get(audio, headers=headers | {"Range": "bytes=-50"})
    assert resp.status == 206 and await resp.read() == recording[-50:]
    resp = await kirjuri.client.get(audio, headers=headers | {"Range": f"bytes={len(recording)}-"})
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(recording)}"
    # nothing of the recording stays on this machine: no blob folder, no temporary copy
    data = configured.storage.data_path
    assert not (data / "blobs").exists()
    assert list(data.glob("kirjuri-blob-*")) == []


async def test_a_ban_said_in_a_call_is_found_in_the_customers_channel_only(
    kirjuri_factory: Any, call_settings: Settings, tmp_path: Path
) -> None:
    kirjuri = await kirjuri_factory(call_settings)
    headers = await kirjuri.login("agent")
    customer_id = await add_customer(kirjuri, headers)
    recording = phone_call(
        [
            # the agent's words would be a ban for every channel if they were read
            Turn("agent", "Laskukassa hei. Kiellän suoramarkkinoinnin."),
            Turn("customer", "Älkää soittako minulle enää myyntipuheluita."),
        ],
        tmp_path / "call.wav",
    )
    status, receipt = await upload(kirjuri, headers, recording.read_bytes(), metadata(external_id="pbx-ban"))
    assert status == 202, receipt
    iid = receipt["interaction_id"]
    call = await wait_until_settled(kirjuri, headers, iid)
    assert call["status"] == "done", call["transcription"]
    deadline = time.monotonic() + 30
    while not (tags := [t["data"] for t in call["tags"] if t["kind"] == "marketing_ban"]):
        assert time.monotonic() < deadline, call["segments"]
        await asyncio.sleep(0.5)
        call = await kirjuri.get_json(f"/api/v1/interactions/{iid}", headers)
    (tag,) = tags
    assert tag["channels"] == ["phone"], (tag, call["segments"])
    said_then = [
        s for s in call["segments"] if s["start"] <= tag["audio_start"] and tag["audio_end"] <= s["end"]
    ]
    assert [s["speaker"] for s in said_then] == ["customer"]
    customer = await kirjuri.get_json(f"/api/v1/customers/{customer_id}", headers)
    assert [b["channel"] for b in customer["marketing_bans"]["proposed"]] == ["phone"]


async def test_openai_whisper_backend_transcribes_a_stereo_call(
    kirjuri_factory: Any, settings: Settings, whisper_dir: Path, tmp_path: Path
) -> None:
    """The reference backend runs its real loading and decoding code on the bundled weights
    (converted to an openai-whisper checkpoint here, so nothing is downloaded)."""
    checkpoint = ct2_to_openai_checkpoint(whisper_dir, tmp_path / "base-from-ct2.pt")
    kirjuri = await kirjuri_factory(
        settings.replace(
            "transcription",
            backend="openai-whisper",
            model=str(checkpoint),
            workers=1,
            retry_seconds=0,
        )
    )
    headers = await kirjuri.login("agent")
    recording = phone_call(
        [
            Turn("agent", "Good morning, this is the invoice desk.", "en"),
            Turn("customer", "Hello, I am calling about my invoice number twenty.", "en"),
        ],
        tmp_path / "call.wav",
    )
    status, receipt = await upload(
        kirjuri, headers, recording.read_bytes(), metadata(external_id="pbx-openai", language="en")
    )
    assert status == 202, receipt
    call = await wait_until_settled(kirjuri, headers, receipt["interaction_id"])
    assert call["status"] == "done", call["transcription"]
    assert call["transcription"]["model"] == "base-from-ct2"
    assert "openai-whisper" in call["transcription"]["model_version"]
    said = {
        who: " ".join(s["text"] for s in call["segments"] if s["speaker"] == who).lower()
        for who in ("agent", "customer")
    }
    assert heard("morning", said["agent"]), said
    assert heard("invoice", said["customer"]), said
    assert not heard("morning", said["customer"]), said
    assert all(0 <= s["start"] < s["end"] for s in call["segments"])


def _encode(samples: np.ndarray, fmt: str, codec: str, rate: int) -> bytes:
    """Audio in a container and codec PyAV can write (Opus in OGG, AAC in M4A, ...)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"  # type: ignore[union-attr]
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):  # type: ignore[union-attr]
            container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)
    return out.getvalue()


def _tone(rate: int, secs: float = 1.5) -> np.ndarray:
    t = np.arange(int(rate * secs)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)


async def test_accepted_formats_are_stored_byte_for_byte_and_served_with_range(
    kirjuri_factory: Any, quiet_settings: Settings, tmp_path: Path
) -> None:
    kirjuri = await kirjuri_factory(quiet_settings)
    headers = await kirjuri.login("agent")
    wav = mono_call("Hei, tässä testi.", "fi", tmp_path / "pcm.wav", encoding="signed-integer").read_bytes()
    samples = _tone(48000)
    files = {
        "wav": (wav, "audio/wav"),
        "mp3": (_encode(_tone(44100), "mp3", "libmp3lame", 44100), "audio/mpeg"),
        "ogg": (_encode(samples, "ogg", "libopus", 48000), "audio/ogg"),
        "flac": (_encode(_tone(16000), "flac", "flac", 16000), "audio/flac"),
        "m4a": (_encode(_tone(44100), "ipod", "aac", 44100), "audio/mp4"),
    }
    for n, (fmt, (data, content_type)) in enumerate(files.items()):
        status, receipt = await upload(kirjuri, headers, data, metadata(f"fmt-{n}"), f"x.{fmt}")
        assert status == 202, (fmt, receipt)
        iid = receipt["interaction_id"]
        call = await kirjuri.get_json(f"/api/v1/interactions/{iid}", headers)
        assert call["meta"]["audio"]["format"] == fmt
        assert call["status"] == "queued"
        resp = await kirjuri.client.get(f"/api/v1/interactions/{iid}/audio", headers=headers)
        assert resp.status == 200
        assert resp.headers["Content-Type"] == content_type
        assert await resp.read() == data, fmt

    # a player seeking: a byte range of the WAV
    iid = (await kirjuri.get_json("/api/v1/interactions?channel=call&limit=100", headers))["items"][-1]["id"]
    resp = await kirjuri.client.get(
        f"/api/v1/interactions/{iid}/audio", headers=headers | {"Range": "bytes=100-199"}
    )
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 100-199/{len(wav)}"
    assert await resp.read() == wav[100:200]
    audited = [e.action for e in await _audit(kirjuri, iid)]
    assert "interaction.audio" in audited


async def _audit(kirjuri: Kirjuri, iid: int) -> list[Any]:
    async with kirjuri.app[DB].read() as session:
        rows, _ = await list_entries(session, AuditFilter(interaction_id=iid), None, 100)
    return list(rows)


async def test_bad_audio_is_refused_with_a_reason_and_nothing_is_stored(
    kirjuri_factory: Any, quiet_settings: Settings, tmp_path: Path
) -> None:
    kirjuri = await kirjuri_factory(quiet_settings.replace("calls", max_audio_bytes=200_000))
    headers = await kirjuri.login("agent")
    good = mono_call("Hei, tässä testi.", "fi", tmp_path / "ok.wav").read_bytes()
    cases = [
        (b"%PDF-1.7 not audio at all", 415, "accepted audio format"),
        (b"", 422, "empty"),
        (good[: len(good) // 2], 422, "truncated"),
        (good[:44] + bytes(range(256)) * 10, 422, "could not be decoded"),
        (b"OggS" + b"\x00" * 500, 422, "could not be decoded"),
        (good + b"\x00" * 200_000, 413, "larger than 200000 bytes"),
    ]
    for n, (data, status, words) in enumerate(cases):
        got, problem = await upload(kirjuri, headers, data, metadata(f"bad-{n}"))
        assert got == status, (n, problem)
        assert words in problem["detail"], (n, problem)
    got, problem = await upload(kirjuri, headers, good, metadata(started_at="yesterday"))
    assert got == 400 and problem["field"] == "started_at"
    got, problem = await upload(kirjuri, headers, good, {"external_id": "x"})
    assert got == 400 and "metadata lacks" in problem["detail"]
    listed = await kirjuri.get_json("/api/v1/interactions?channel=call", headers)
    assert listed["items"] == []
    blob_dir = kirjuri.app[BLOBS].root
    assert not blob_dir.exists() or not any(p.is_file() for p in blob_dir.rglob("*"))


async def test_same_external_id_is_one_call(
    kirjuri_factory: Any, quiet_settings: Settings, tmp_path: Path
) -> None:
    kirjuri = await kirjuri_factory(quiet_settings)
    token = await _ingest_token(kirjuri)
    headers = await kirjuri.login("agent")
    audio = mono_call("Hei.", "fi", tmp_path / "a.wav").read_bytes()
    first = await upload(kirjuri, token, audio, metadata("pbx-77"))
    again = await upload(kirjuri, token, audio, metadata("pbx-77"))
    other_audio_same_id = await upload(kirjuri, token, audio + b"\x00\x00", metadata("pbx-77"))
    both = await asyncio.gather(*(upload(kirjuri, token, audio, metadata("pbx-78")) for _ in range(3)))
    assert first[0] == 202 and not first[1]["duplicate"]
    assert again == (202, first[1] | {"duplicate": True})
    assert other_audio_same_id[1]["interaction_id"] == first[1]["interaction_id"]
    assert len({r[1]["interaction_id"] for r in both}) == 1
    listed = await kirjuri.get_json("/api/v1/interactions?channel=call", headers)
    assert listed["total"] == 2
    # the number was normalised and the agent kept
    call = await kirjuri.get_json(f"/api/v1/interactions/{first[1]['interaction_id']}", headers)
    assert {(p["role"], p["value"]) for p in call["participants"]} == {
        ("from", CUSTOMER_PHONE),
        ("to", "+358942424242"),
    }
    assert call["meta"]["agent"] == "Maija Myyjä"


async def _ingest_token(kirjuri: Kirjuri) -> dict[str, str]:
    from service.access import create_service_token

    token = await create_service_token(kirjuri.app[DB], "pbx", "ingest")
    return {"Authorization": f"Bearer {token}"}


async def test_a_call_that_cannot_be_transcribed_fails_after_its_attempts_with_the_error_shown(
    kirjuri_factory: Any, quiet_settings: Settings, call_settings: Settings, tmp_path: Path
) -> None:
    first = await kirjuri_factory(quiet_settings.replace("transcription", max_attempts=2))
    headers = await first.login("agent")
    audio = mono_call("Hei.", "fi", tmp_path / "a.wav").read_bytes()
    status, receipt = await upload(first, headers, audio, metadata())
    assert status == 202
    iid = receipt["interaction_id"]
    # the stored recording goes bad on disk after it was accepted, while no worker runs
    async with first.app[DB].read() as session:
        blob = (await session.execute(select(Interaction.raw_blob).where(Interaction.id == iid))).scalar_one()
    first.app[BLOBS].path(blob).write_bytes(b"RIFF" + b"\xff" * 400)
    await first.client.close()

    second = await kirjuri_factory(call_settings)
    call = await wait_until_settled(second, headers, iid, limit=120)
    assert call["status"] == "failed", call["transcription"]
    assert call["transcription"]["attempts"] == 2, call["transcription"]
    assert "InvalidDataError" in call["transcription"]["error"] or "decod" in call["transcription"]["error"]
    assert call["segments"] == []
