"""Transcription figures: real-time factor (processing seconds / audio seconds) of Kirjuri's call
transcription on the same recordings, per backend, model, worker count and threads, plus the
effect of voice-activity detection and of hotwords, and peak memory per worker process.

The recordings are Finnish phone calls made here with festival's suopuhe voice: 8 kHz µ-law
stereo, agent left and customer right taking turns, so each channel is about half silence,
with a hold pause in the middle. Every configuration runs in fresh worker processes
(spawned, as in `kirjuri serve`) and processes all recordings; the aggregate RTF is the wall
time of the whole batch over the total audio length. The model load is outside the timing.
Needs festival, festvox-suopuhe-lj and sox (as the tests do).
Usage: python bench/transcribe.py [--calls N] [--model DIR] [--repeat R]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.settings import TranscriptionSettings, load_settings  # noqa: E402
from service.transcription import CallAudio, _transcribe_in_worker  # noqa: E402
from service.whisper_model import bundled_model_dir  # noqa: E402
from tests.speech import Turn, heard, phone_call, word_error_rate  # noqa: E402
from tests.whisper_checkpoint import ct2_to_openai_checkpoint  # noqa: E402

SCRIPT = [
    Turn("agent", "Laskukassa, hyvää päivää, täällä Maija. Miten voin auttaa?"),
    Turn("customer", "Hei. Soitan laskun numero kaksikymmentäkolme takia. Eräpäivä on huomenna."),
    Turn("agent", "Hetkinen, katson tiedot. Laitan puhelun pitoon."),
    Turn("agent", "Kiitos odottamisesta. Voin siirtää eräpäivää viikolla."),
    Turn("customer", "Hyvä. Ja kiellän suoramarkkinoinnin, älkää soittako minulle enää myyntipuheluita."),
]
KEY_WORDS = ["laskukassa", "laskun", "numero", "eräpäivä", "suoramarkkinoinnin", "myyntipuheluita"]
SPOKEN = {who: " ".join(t.text for t in SCRIPT if t.speaker == who) for who in ("agent", "customer")}


def _warm(settings: TranscriptionSettings, data_dir: str, probe: str) -> float:
    """Load the model in this worker (timed apart from the batch)."""
    started = time.perf_counter()
    _transcribe_in_worker(settings, data_dir, CallAudio(probe, "mono", "fi"))
    return time.perf_counter() - started


def run(
    settings: TranscriptionSettings, data_dir: str, calls: list[Path], audio_seconds: float, probe: str
) -> dict[str, float]:
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=settings.workers, mp_context=ctx) as pool:
        wait([pool.submit(_warm, settings, data_dir, probe) for _ in range(settings.workers * 2)])
        started = time.perf_counter()
        futures = [
            pool.submit(_transcribe_in_worker, settings, data_dir, CallAudio(str(c), "stereo", "fi"))
            for c in calls
        ]
        results = [f.result() for f in futures]
        wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    texts = [" ".join(s.text for s in r.segments) for r in results]
    hits = statistics.mean(sum(heard(w, t) for w in KEY_WORDS) / len(KEY_WORDS) for t in texts)
    wer = statistics.mean(
        word_error_rate(SPOKEN[speaker], " ".join(s.text for s in r.segments if s.speaker == speaker))
        for r in results
        for speaker in SPOKEN
    )
    return {"rtf": wall / audio_seconds, "wall": wall, "peak_mb": peak_mb, "key_words": hits, "wer": wer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--model", default="")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kirjuri-bench-"))
    model = args.model or str(bundled_model_dir(work))
    print(f"making {args.calls} Finnish stereo calls with festival ...", flush=True)
    calls = [phone_call(SCRIPT, work / f"call-{n}.wav", gap=0.8 + 0.1 * n) for n in range(args.calls)]
    probe = str(phone_call(SCRIPT[:1], work / "probe.wav"))
    import av

    audio_seconds = 0.0
    for c in calls:
        with av.open(str(c)) as container:
            audio_seconds += (container.duration or 0) / 1_000_000
    print(f"{len(calls)} calls, {audio_seconds:.1f} s of stereo audio in all, model {Path(model).name}\n")

    base = dataclasses.replace(load_settings(environ={}).transcription, model=model)
    configs = [
        ("faster-whisper int8, 1 worker x 2 threads", dict(workers=1, cpu_threads=2)),
        ("faster-whisper int8, 2 workers x 1 thread (default)", dict(workers=2, cpu_threads=1)),
        ("  same, VAD off", dict(workers=2, cpu_threads=1, vad=False)),
        ("  same, no hotwords", dict(workers=2, cpu_threads=1, hotwords=[])),
        ("  same, greedy (beam 1)", dict(workers=2, cpu_threads=1, beam_size=1)),
        ("  same, beam 3", dict(workers=2, cpu_threads=1, beam_size=3)),
        ("  same, no 5-token repeats", dict(workers=2, cpu_threads=1, no_repeat_ngram_size=5)),
        ("  same, temperature fallback on", dict(workers=2, cpu_threads=1, temperature_fallback=True)),
    ]
    try:
        import whisper  # noqa: F401

        # the same weights for both backends: the bundled model converted to a checkpoint
        checkpoint = ct2_to_openai_checkpoint(Path(model), work / f"{Path(model).name}.pt")
        configs += [
            ("faster-whisper float32, 2 workers x 1 thread", dict(workers=2, compute_type="float32")),
            (
                "openai-whisper float32, 2 workers x 1 thread",
                dict(workers=2, backend="openai-whisper", model=str(checkpoint)),
            ),
        ]
    except ImportError:
        print("openai-whisper: not installed (pip install -e '.[openai-whisper]'); its rows are skipped\n")
    figures: dict[str, dict[str, float]] = {}
    for label, change in configs:
        settings = dataclasses.replace(base, **change)  # type: ignore[arg-type]
        rounds = [run(settings, str(work), calls, audio_seconds, probe) for _ in range(args.repeat)]
        figures[label] = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        f = figures[label]
        print(
            f"{label:55s} RTF {f['rtf']:.3f}  ({f['wall']:.1f} s)  key words heard {f['key_words']:.0%}  "
            f"WER {f['wer']:.2f}  "
            f"peak RSS of a worker so far {f['peak_mb']:.0f} MB",
            flush=True,
        )
    one, two = figures[configs[0][0]], figures[configs[1][0]]
    ratio = one["rtf"] / two["rtf"]
    print(f"\n2 workers x 1 thread vs 1 worker x 2 threads: {ratio:.2f}x aggregate throughput")
    vad_off = figures["  same, VAD off"]
    print(f"VAD: {vad_off['rtf'] / two['rtf']:.2f}x faster than without it")
    print(
        f"hotwords: key words heard {two['key_words']:.0%} with, "
        f"{figures['  same, no hotwords']['key_words']:.0%} without"
    )
    reference = figures.get("openai-whisper float32, 2 workers x 1 thread")
    if reference:
        same = figures["faster-whisper float32, 2 workers x 1 thread"]
        print(
            f"faster-whisper vs openai-whisper, same weights and beam: "
            f"{reference['rtf'] / two['rtf']:.2f}x (int8, the default), "
            f"{reference['rtf'] / same['rtf']:.2f}x (both float32)"
        )


if __name__ == "__main__":
    main()
