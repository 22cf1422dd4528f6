"""The faster-whisper transcriber: the configured hotwords bias calls in their own language
only (each language its own list), as a comma-separated list (joined with spaces, the base
model got stuck repeating itself more often); and a recording's transcript does not change
from one pass to the next."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.audio import decode
from service.settings import load_settings
from service.transcriber import ChannelResult, FasterWhisperTranscriber, hint_lists
from tests.speech import INVOICE_CALL, heard, mono_call, phone_call

HOTWORDS = ["Laskukassa", "suoramarkkinointi", " ", "eräpäivä"]
SWEDISH = ["Laskukassa", "nyhetsbrev", "faktura"]


class Recording(FasterWhisperTranscriber):
    """The real transcriber, noting the hints each pass over a channel was given."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.hints: list[str | None] = []

    def _transcribe(self, samples: np.ndarray, language: str | None, hotwords: str | None) -> ChannelResult:
        self.hints.append(hotwords)
        return super()._transcribe(samples, language, hotwords)


def spoken(transcriber: Recording, text: str, language: str, path: Path) -> str:
    """What the transcriber makes of `text` said in `language` on a mono call."""
    samples = decode(mono_call(text, language, path), split_channels=False)[0]
    return " ".join(s.text for s in transcriber.transcribe(samples, language).segments)


def test_hotwords_bias_only_calls_in_their_language(whisper_dir: Path, tmp_path: Path) -> None:
    transcriber = Recording(
        whisper_dir, hotwords=HOTWORDS, hotwords_language="fi", hotwords_by_language={"sv": SWEDISH}
    )
    english = spoken(transcriber, "Good morning, I am calling about my invoice.", "en", tmp_path / "en.wav")
    assert heard("invoice", english)
    assert transcriber.hints == [None]  # neither list is pressed on English speech

    finnish = spoken(transcriber, "Soitan laskun takia, eräpäivä on huomenna.", "fi", tmp_path / "fi.wav")
    assert heard("eräpäivä", finnish)
    assert transcriber.hints[1] == "Laskukassa, suoramarkkinointi, eräpäivä"

    swedish = spoken(transcriber, "Jag ringer om fakturan.", "sv", tmp_path / "sv.wav")
    assert heard("faktura", swedish)
    assert transcriber.hints[2] == "Laskukassa, nyhetsbrev, faktura"


def test_the_default_config_has_hint_lists_for_finnish_swedish_and_english() -> None:
    defaults = load_settings(environ={}).transcription
    hints = hint_lists(defaults.hotwords, defaults.hotwords_language, defaults.hotwords_by_language)
    assert set(hints) == {"fi", "sv", "en"}
    assert "suoramarkkinointi" in hints["fi"] and "direktmarknadsföring" in hints["sv"]
    # the environment may replace the lists (JSON), as it may any other key
    override = load_settings(
        environ={"KIRJURI_TRANSCRIPTION_HOTWORDS_BY_LANGUAGE": '{"sv": ["reklam"], "fi": ["Laskukassa"]}'}
    ).transcription
    hints = hint_lists(override.hotwords, override.hotwords_language, override.hotwords_by_language)
    assert hints == {"fi": "Laskukassa", "sv": "reklam"}


def test_the_same_recording_gives_the_same_transcript_every_time(whisper_dir: Path, tmp_path: Path) -> None:
    # The agent's side of the killed-transcription test's call: the base model reads some of its
    # windows as repetitive, which Whisper's temperature fallback would decode again by random
    # sampling, differently each time (three passes gave three texts with it on).
    call = phone_call(INVOICE_CALL * 3, tmp_path / "call.wav", gap=1.1)
    agent = decode(call, split_channels=True)[0]
    defaults = load_settings(environ={}).transcription
    transcriber = FasterWhisperTranscriber(whisper_dir, hotwords=defaults.hotwords)
    passes = [[(s.start, s.text) for s in transcriber.transcribe(agent, "fi").segments] for _ in range(3)]
    assert passes[0], "nothing was heard"
    assert passes[1] == passes[0] and passes[2] == passes[0]
