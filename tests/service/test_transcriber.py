"""The faster-whisper transcriber's hints: the configured hotwords bias calls in their own
language only, as a comma-separated list (joined with spaces, the base model got stuck
repeating itself more often)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.audio import decode
from service.transcriber import ChannelResult, FasterWhisperTranscriber
from tests.speech import heard, mono_call

HOTWORDS = ["Laskukassa", "suoramarkkinointi", " ", "eräpäivä"]


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
    transcriber = Recording(whisper_dir, hotwords=HOTWORDS, hotwords_language="fi")
    english = spoken(transcriber, "Good morning, I am calling about my invoice.", "en", tmp_path / "en.wav")
    assert heard("invoice", english)
    assert transcriber.hints == [None]  # Finnish hint words are not pressed on English speech

    finnish = spoken(transcriber, "Soitan laskun takia, eräpäivä on huomenna.", "fi", tmp_path / "fi.wav")
    assert heard("eräpäivä", finnish)
    assert transcriber.hints[1] == "Laskukassa, suoramarkkinointi, eräpäivä"
