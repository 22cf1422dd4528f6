"""Synthesised calls for bench/marketing_eval.py: the customer states a ban (or says something
that only looks like one) in a stereo phone call; each call is transcribed with the bundled
Whisper model as Kirjuri does it, and only the customer channel is read."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from bench.marketing_eval import Score, add_hits
from service.marketing_detect import detect
from service.settings import load_settings
from service.transcription import CallAudio, _transcribe_in_worker
from service.whisper_model import bundled_model_dir
from tests.speech import Turn, phone_call

GREETING = {
    "fi": "Laskukassa, hyvää päivää. Miten voin auttaa?",
    "sv": "Laskukassa, god dag. Hur kan jag hjälpa till?",
    "en": "Laskukassa, good morning. How can I help?",
}
# (language, expected channels or "-" for not a ban, what the customer says)
CALLS = [
    ("fi", "phone", "Älkää soittako minulle enää myyntipuheluita."),
    ("fi", "all", "Kiellän suoramarkkinoinnin."),
    ("fi", "all", "Haluan kieltää kaiken suoramarkkinoinnin."),
    ("fi", "email", "Poistakaa minut postituslistalta."),
    ("fi", "all", "En halua mitään markkinointia teiltä."),
    ("fi", "sms", "En halua tekstiviestimainoksia."),
    ("fi", "phone", "Lopettakaa myyntisoitot."),
    ("fi", "email", "En halua enää uutiskirjettänne."),
    ("fi", "-", "Soitan laskun numero kaksikymmentäkolme takia."),
    ("fi", "-", "Älkää soittako ennen yhdeksää."),
    ("fi", "-", "Haluan tilata uutiskirjeenne."),
    ("sv", "phone", "Ring mig inte mer med erbjudanden."),
    ("sv", "all", "Jag vill inte ha reklam."),
    ("sv", "email", "Sluta skicka nyhetsbrev till mig."),
    ("sv", "all", "Jag förbjuder all direktmarknadsföring."),
    ("sv", "phone", "Sluta ringa mig med säljsamtal."),
    ("sv", "-", "Jag ringer om fakturan."),
    ("sv", "-", "Ring mig inte före nio."),
    ("en", "email", "Please unsubscribe me from your newsletter."),
    ("en", "phone", "Please do not call me with sales offers again."),
    ("en", "all", "I do not want any marketing from you."),
    ("en", "email", "Remove me from your mailing list."),
    ("en", "all", "I object to direct marketing."),
    ("en", "-", "I am calling about my invoice."),
    ("en", "-", "Please call me tomorrow about the loan."),
]
# A second set, written on 2026-12-02 before per-language hotwords were tried and never used to
# choose them: 2 of its 10 bans were found without those hotwords, 6 with them. One of its
# misses ("Take me off your email list", heard exactly) then led to the email-list rule of
# the detector (7 of 10): that sentence no longer tests anything unseen.
HELD_OUT_CALLS = [
    ("sv", "all", "Jag vill inte få någon marknadsföring från er."),
    ("sv", "phone", "Ni får inte ringa mig med erbjudanden längre."),
    ("sv", "email", "Avregistrera mig från ert nyhetsbrev."),
    ("sv", "sms", "Skicka inga reklam-sms till mig."),
    ("sv", "-", "Jag vill betala fakturan i morgon."),
    ("fi", "phone", "En halua enää myyntipuheluita teiltä."),
    ("fi", "all", "Kieltäydyn kaikesta markkinoinnista."),
    ("fi", "email", "Älkää lähettäkö minulle enää mainossähköposteja."),
    ("fi", "-", "Voitteko lähettää laskun sähköpostilla?"),
    ("en", "phone", "Stop calling me with offers."),
    ("en", "all", "I don't want to receive any marketing."),
    ("en", "email", "Take me off your email list."),
    ("en", "-", "Can you send the invoice by email?"),
]


def call_scores(
    work: Path, calls: list[tuple[str, str, str]] = CALLS, name: str = "ban-call"
) -> dict[str, Score]:
    """Scores per language (and "all") of the detector on these calls' transcripts, made with
    the default [transcription] settings (hotwords included)."""
    model = str(bundled_model_dir(work))
    settings = dataclasses.replace(load_settings(environ={}).transcription, model=model)
    recordings = []
    for n, (language, _, said) in enumerate(calls):
        turns = [Turn("agent", GREETING[language], language), Turn("customer", said, language)]
        recordings.append(phone_call(turns, work / f"{name}-{n}.wav"))
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        results = list(
            pool.map(
                _transcribe_in_worker,
                [settings] * len(calls),
                [str(work)] * len(calls),
                [
                    CallAudio(str(r), "stereo", language)
                    for r, (language, _, _) in zip(recordings, calls, strict=True)
                ],
            )
        )
    scores: dict[str, Score] = defaultdict(Score)
    for (language, channels, said), result in zip(calls, results, strict=True):
        expected = set() if channels == "-" else set(channels.split(","))
        heard = [s for s in result.segments if s.speaker == "customer"]
        hits = [h for s in heard for h in detect(s.text, language=language, source="call")]
        add_hits(scores, language, expected, hits, f"{said} -> heard {' '.join(s.text for s in heard)!r}")
    return scores
