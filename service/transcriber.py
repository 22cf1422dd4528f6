"""Speech to text on this machine: one `Transcriber` interface, two Whisper backends.

- `FasterWhisperTranscriber` (the default): CTranslate2, int8 on CPU, silero VAD and hotwords
  built in. It runs the bundled multilingual base model unless the config names another
  CTranslate2 model folder.
- `OpenAIWhisperTranscriber` (optional extra `kirjuri[openai-whisper]`): the reference PyTorch
  implementation, for a checkpoint file or a model already in whisper's cache. The same
  silero VAD (from faster-whisper) cuts silence before it, so both backends hear the same.

Neither ever downloads anything: a model that is not on disk is a configuration error.
Whisper can decode a window again by sampling at rising temperatures when its first reading
looks repetitive or unsure (`temperature_fallback`, off by default: then the same recording
always gives the same transcript). When it is on, both backends seed that sampling, so a
fresh worker process repeats its first job's text (CTranslate2 seeds its decoding thread
once, when the model is loaded; PyTorch is seeded again for every channel).
A transcriber takes one channel of 16 kHz float32 samples and returns timed segments.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from service.audio import SAMPLE_RATE
from service.errors import ConfigError
from service.settings import TranscriptionSettings
from service.whisper_model import bundled_model_dir

BACKENDS = ("faster-whisper", "openai-whisper")
SAMPLING_SEED = 20261124
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # Whisper's own schedule


def _temperatures(fallback: bool) -> tuple[float, ...]:
    return FALLBACK_TEMPERATURES if fallback else (0.0,)


@dataclass(frozen=True)
class Segment:
    """Recognised speech: seconds from the start of the recording, text, mean token log-prob."""

    start: float
    end: float
    text: str
    avg_logprob: float


@dataclass(frozen=True)
class ChannelResult:
    """What one channel said, and the language it was recognised in."""

    segments: list[Segment]
    language: str


class Transcriber(Protocol):
    """Speech recognition for one channel of audio."""

    name: str
    version: str

    def transcribe(self, samples: np.ndarray, language: str | None) -> ChannelResult:
        """Segments of `samples` (16 kHz mono float32); `language` None detects it."""
        ...


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class FasterWhisperTranscriber:
    """Whisper through CTranslate2 (faster-whisper)."""

    def __init__(
        self,
        model_dir: Path,
        cpu_threads: int = 1,
        compute_type: str = "int8",
        beam_size: int = 5,
        vad: bool = True,
        hotwords: Sequence[str] = (),
        hotwords_language: str = "fi",
        hotwords_by_language: Mapping[str, Sequence[str]] | None = None,
        no_repeat_ngram_size: int = 0,
        temperature_fallback: bool = False,
    ) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel

        if not (model_dir / "model.bin").exists():
            raise ConfigError(f"[transcription] model: {model_dir} holds no CTranslate2 model.bin")
        ctranslate2.set_random_seed(SAMPLING_SEED)
        self._model = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=1,
            local_files_only=True,
        )
        self._beam_size = beam_size
        self._vad = vad
        self._hints = hint_lists(hotwords, hotwords_language, hotwords_by_language)
        self._no_repeat = no_repeat_ngram_size
        self._temperatures = _temperatures(temperature_fallback)
        self.name = f"{model_dir.name} ({compute_type})"
        self.version = f"faster-whisper {_version('faster-whisper')}, ctranslate2 {_version('ctranslate2')}"

    def transcribe(self, samples: np.ndarray, language: str | None) -> ChannelResult:
        hints = self._hints.get(language or "")
        result = self._transcribe(samples, language, hints)
        if hints and any(_echoes(s.text, hints) for s in result.segments):
            # Whisper sometimes "hears" the hint list itself in unclear speech; such a
            # transcript would put words in a speaker's mouth (a marketing ban, a product
            # name), so the channel is heard again without hints.
            result = self._transcribe(samples, language, None)
        return result

    def _transcribe(self, samples: np.ndarray, language: str | None, hotwords: str | None) -> ChannelResult:
        if samples.size == 0:
            return ChannelResult([], language or "")
        pieces, info = self._model.transcribe(
            samples,
            language=language,
            beam_size=self._beam_size,
            vad_filter=self._vad,
            vad_parameters={"min_silence_duration_ms": 500},
            hotwords=hotwords,
            condition_on_previous_text=False,
            no_repeat_ngram_size=self._no_repeat,
            temperature=self._temperatures,
        )
        segments = [
            Segment(round(s.start, 2), round(s.end, 2), s.text.strip(), float(s.avg_logprob))
            for s in pieces
            if s.text.strip()
        ]
        return ChannelResult(segments, info.language)


def hint_lists(
    hotwords: Sequence[str], language: str, by_language: Mapping[str, Sequence[str]] | None = None
) -> dict[str, str]:
    """Each language's hint list as Whisper's prompt: `hotwords` for `language`, and the lists
    of `by_language` (a language named in both gets its `by_language` list). A language with
    no list, or a call whose language is detected, gets none: Finnish words pressed on a
    Swedish call only bend it towards Finnish."""
    lists = {language: hotwords, **(by_language or {})}
    return {lang: hints for lang, words in lists.items() if (hints := _hint_list(words))}


def _hint_list(hotwords: Sequence[str]) -> str | None:
    """The hotwords as Whisper's prompt: a comma-separated list. Joined with spaces only, the
    base model fell into repeating itself more often (6 of 16 windows decoded twice on the
    bench's Finnish calls, against 3 of 15)."""
    return ", ".join(w.strip() for w in hotwords if w.strip()) or None


def _echoes(text: str, hotwords: str) -> bool:
    """True when a segment recites the hint list: it is nothing but hint words (two or
    more), or three hint words follow one another (people rarely say three in a row)."""
    words = re.findall(r"\w+", text.lower())
    hints = set(re.findall(r"\w+", hotwords.lower()))
    if len(words) >= 2 and all(w in hints for w in words):
        return True
    run = 0
    for word in words:
        run = run + 1 if word in hints else 0
        if run >= 3:
            return True
    return False


class OpenAIWhisperTranscriber:
    """The reference openai-whisper implementation (PyTorch, CPU)."""

    def __init__(
        self,
        model: str,
        cpu_threads: int = 1,
        beam_size: int = 5,
        vad: bool = True,
        hotwords: Sequence[str] = (),
        hotwords_language: str = "fi",
        hotwords_by_language: Mapping[str, Sequence[str]] | None = None,
        temperature_fallback: bool = False,
    ) -> None:
        try:
            import torch
            import whisper
        except ImportError:
            raise ConfigError(
                "[transcription] backend = 'openai-whisper' needs the optional extra: "
                "pip install -e '.[openai-whisper]'"
            ) from None
        path = Path(model).expanduser()
        if not path.is_file():  # a name: only if whisper's cache already holds it
            cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
            path = cache / f"{model}.pt"
        if not path.is_file():
            raise ConfigError(
                f"[transcription] model: {model!r} is neither a checkpoint file nor a model in whisper's "
                "cache; Kirjuri never downloads weights"
            )
        torch.set_num_threads(cpu_threads)
        self._torch = torch
        self._model = whisper.load_model(str(path), device="cpu")
        self._beam_size = beam_size
        self._vad = vad
        self._hints = hint_lists(hotwords, hotwords_language, hotwords_by_language)
        self._temperatures = _temperatures(temperature_fallback)
        self.name = path.stem
        self.version = f"openai-whisper {_version('openai-whisper')}, torch {_version('torch')}"

    def transcribe(self, samples: np.ndarray, language: str | None) -> ChannelResult:
        from faster_whisper.vad import SpeechTimestampsMap, VadOptions, get_speech_timestamps

        if samples.size == 0:
            return ChannelResult([], language or "")
        speech = samples
        timeline: Any = None
        if self._vad:
            chunks = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=500))
            if not chunks:
                return ChannelResult([], language or "")
            speech = np.concatenate([samples[c["start"] : c["end"]] for c in chunks])
            timeline = SpeechTimestampsMap(chunks, SAMPLE_RATE)
        self._torch.manual_seed(SAMPLING_SEED)
        result = self._model.transcribe(
            speech,
            language=language,
            beam_size=self._beam_size if self._beam_size > 1 else None,
            initial_prompt=self._hints.get(language or ""),
            condition_on_previous_text=False,
            temperature=self._temperatures,
            fp16=False,
            verbose=None,
        )
        segments = []
        for s in result["segments"]:
            text = str(s["text"]).strip()
            if not text:
                continue
            start, end = float(s["start"]), float(s["end"])
            if timeline is not None:
                start, end = timeline.get_original_time(start), timeline.get_original_time(end, is_end=True)
            segments.append(Segment(round(start, 2), round(end, 2), text, float(s["avg_logprob"])))
        return ChannelResult(segments, str(result.get("language") or language or ""))


def build_transcriber(settings: TranscriptionSettings, data_dir: Path) -> Transcriber:
    """The transcriber the settings ask for; raises ConfigError naming what is wrong."""
    if settings.backend == "faster-whisper":
        model_dir = Path(settings.model).expanduser() if settings.model else bundled_model_dir(data_dir)
        return FasterWhisperTranscriber(
            model_dir,
            cpu_threads=settings.cpu_threads,
            compute_type=settings.compute_type,
            beam_size=settings.beam_size,
            vad=settings.vad,
            hotwords=settings.hotwords,
            hotwords_language=settings.hotwords_language,
            hotwords_by_language=settings.hotwords_by_language,
            no_repeat_ngram_size=settings.no_repeat_ngram_size,
            temperature_fallback=settings.temperature_fallback,
        )
    if settings.backend == "openai-whisper":
        return OpenAIWhisperTranscriber(
            settings.model or "base",
            cpu_threads=settings.cpu_threads,
            beam_size=settings.beam_size,
            vad=settings.vad,
            hotwords=settings.hotwords,
            hotwords_language=settings.hotwords_language,
            hotwords_by_language=settings.hotwords_by_language,
            temperature_fallback=settings.temperature_fallback,
        )
    raise ConfigError(f"[transcription] backend must be one of {', '.join(BACKENDS)}")
