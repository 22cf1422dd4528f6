"""Test speech that no one here recorded: Finnish from festival's suopuhe voice, English and
Swedish from espeak-ng, made into what phone systems write with sox (8 kHz µ-law, the agent
on the left channel and the customer on the right, taking turns)."""

from __future__ import annotations

import difflib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from service.marketing_detect import edit_distance


def _run(*args: str, stdin: bytes | None = None) -> None:
    subprocess.run(args, input=stdin, check=True, capture_output=True)


def _sox(*args: str) -> None:
    """sox in repeatable mode (`-R`): its dither is seeded, so the same script makes the same
    recording byte for byte, and a test hears the same audio on every run."""
    _run("sox", "-R", *args)


def say(text: str, language: str, out: Path) -> Path:
    """Speak `text` into a WAV file: fi with festival (text in ISO-8859-1), en/sv with espeak-ng."""
    if language == "fi":
        source = out.with_suffix(".txt")
        source.write_bytes(text.encode("iso-8859-1"))
        _run("text2wave", "-eval", "(voice_suo_fi_lj_diphone)", str(source), "-o", str(out))
    else:
        voice = {"en": "en-us", "sv": "sv+m3"}[language]
        _run("espeak-ng", "-v", voice, "-s", "120", "-g", "4", "-w", str(out), text)
    return out


def seconds(path: Path) -> float:
    out = subprocess.run(["soxi", "-D", str(path)], check=True, capture_output=True, text=True)
    return float(out.stdout)


@dataclass(frozen=True)
class Turn:
    """One speaker's line: `agent` or `customer`."""

    speaker: str
    text: str
    language: str = "fi"


# A customer calls about an invoice's due date: four turns, used repeated as a long call.
INVOICE_CALL = [
    Turn("agent", "Laskukassa, hyvää päivää. Miten voin auttaa?"),
    Turn("customer", "Soitan laskusta, jonka eräpäivä on huomenna. Voinko maksaa sen ensi viikolla?"),
    Turn("agent", "Kyllä, siirrän eräpäivää viikolla eteenpäin. Lähetän uuden laskun sähköpostiin."),
    Turn("customer", "Kiitos paljon. Hyvää päivänjatkoa."),
]


def phone_call(turns: list[Turn], out: Path, gap: float = 0.7, lead: float = 0.5) -> Path:
    """A two-channel 8 kHz µ-law WAV of people taking turns, agent left, customer right."""
    work = out.parent / f"{out.stem}-parts"
    work.mkdir(exist_ok=True)
    at = lead
    tracks: dict[str, list[tuple[float, Path]]] = {"agent": [], "customer": []}
    for n, turn in enumerate(turns):
        raw = say(turn.text, turn.language, work / f"{n}.wav")
        narrow = work / f"{n}-8k.wav"
        _sox(str(raw), "-r", "8000", "-c", "1", "-b", "16", str(narrow))
        tracks[turn.speaker].append((at, narrow))
        at += seconds(narrow) + gap
    total = at + lead
    channels = []
    for speaker in ("agent", "customer"):
        track = work / f"{speaker}.wav"
        _sox("-n", "-r", "8000", "-c", "1", "-b", "16", str(track), "trim", "0", f"{total:.3f}")
        for start, clip in tracks[speaker]:
            padded = work / f"{speaker}-{start:.3f}.wav"
            _sox(str(clip), str(padded), "pad", f"{start:.3f}")
            mixed = work / f"{speaker}-mix.wav"
            _sox("-m", str(track), str(padded), str(mixed), "trim", "0", f"{total:.3f}")
            mixed.replace(track)
        channels.append(track)
    _sox("-M", *map(str, channels), "-r", "8000", "-e", "u-law", "-c", "2", str(out))
    return out


def mono_call(text: str, language: str, out: Path, encoding: str = "u-law") -> Path:
    """A one-channel 8 kHz recording of one speaker (`encoding`: u-law, a-law or signed-integer)."""
    raw = say(text, language, out.with_name(out.stem + "-raw.wav"))
    args = ["-e", encoding] + (["-b", "16"] if encoding == "signed-integer" else [])
    _sox(str(raw), "-r", "8000", "-c", "1", *args, str(out))
    return out


def heard(word: str, text: str) -> bool:
    """Whether `word` was said in `text`, allowing what a weak model does to Finnish: a letter
    or two wrong ("nummero"), a compound split ("lasku kassa") or run together ("numerokaksi")."""
    letters = re.sub(r"\W+", "", text.lower())
    return any(
        difflib.SequenceMatcher(None, word, letters[i : i + size]).ratio() >= 0.8
        for size in (len(word) - 1, len(word), len(word) + 1)
        for i in range(max(1, len(letters) - size + 1))
    )


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word errors (substituted, left out, added) over the reference's words, case and
    punctuation aside."""
    ref, hyp = re.findall(r"\w+", reference.lower()), re.findall(r"\w+", hypothesis.lower())
    return edit_distance(ref, hyp) / max(1, len(ref))
