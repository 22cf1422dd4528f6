"""The detector on the issue's own examples, and which parts of an email are the customer's."""

from __future__ import annotations

import pytest

from service.lexicon import available
from service.marketing_detect import detect, email_regions


@pytest.mark.parametrize(
    ("text", "channels", "language"),
    [
        ("Kiellän suoramarkkinoinnin.", ("all",), "fi"),
        ("Älkää soittako minulle enää myyntipuheluita.", ("phone",), "fi"),
        ("Poistakaa minut postituslistalta.", ("email",), "fi"),
        ("Ring mig inte mer med erbjudanden.", ("phone",), "sv"),
        ("Unsubscribe me from your newsletter.", ("email",), "en"),
        # a transcript's misspelling, and inflected compounds
        ("Haluan keltää kaiken suoramarkkinoinnin.", ("all",), "fi"),
        ("En halua markkinointiviestejä tekstiviestillä.", ("sms",), "fi"),
    ],
)
def test_bans_are_found_with_their_channels(text: str, channels: tuple[str, ...], language: str) -> None:
    (hit,) = detect(text)
    assert (hit.channels, hit.language) == (channels, language)
    assert text[hit.start : hit.end] == hit.quote


@pytest.mark.parametrize(
    ("heard", "channels", "language"),
    [
        # what the bundled base model made of synthesised customers in bench/marketing_calls.py
        ("Enhalua tekstiviesti mainoksia.", ("sms",), "fi"),  # a negation run into its verb
        ("halua keltä kaiken suoramarkkinointi.", ("all",), "fi"),  # "haluan kieltää", two letters off
        ("En halua enää uutiskerjettäne.", ("email",), "fi"),  # "uutiskirjettänne", one letter off
        ("Please subscribe me from your newsletter.", ("email",), "en"),  # "unsubscribe", clipped
        ("slutar ringa med med säljsamtal", ("phone",), "sv"),  # "sluta ringa mig", as a present tense
    ],
)
def test_what_recognition_does_to_a_ban_is_undone_in_calls(
    heard: str, channels: tuple[str, ...], language: str
) -> None:
    (hit,) = detect(heard, language=language, source="call")
    assert hit.channels == channels
    assert detect(heard, language=language, source="email") == []  # typed text is read as written


@pytest.mark.parametrize(
    ("heard", "channels", "language"),
    [
        ("kiirlän suoramarkkinointi.", ("all",), "fi"),  # "kiellän", two letters off
        ("jag terbjuder all direktmarknadsföring", ("all",), "sv"),  # "förbjuder", two letters off
    ],
)
def test_a_refusal_heard_two_letters_off_counts_when_it_is_no_word(
    heard: str, channels: tuple[str, ...], language: str
) -> None:
    if not available(language):
        pytest.skip(f"no spelling dictionary for {language} (.ci/run installs them)")
    (hit,) = detect(heard, language=language, source="call")
    assert hit.channels == channels
    assert hit.confidence < 0.9  # below a ban said in so many words
    assert detect(heard, language=language, source="email") == []  # typed text is read as written


def test_a_real_word_two_letters_off_a_refusal_is_what_was_said() -> None:
    if not available("sv"):
        pytest.skip("no Swedish spelling dictionary (.ci/run installs it)")
    assert detect("jag erbjuder all direktmarknadsföring", language="sv", source="call") == []  # offer


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Take me off your email list.", "en"),
        ("Please remove me from your e-mail list.", "en"),
        ("Poistakaa minut sähköpostilistalta.", "fi"),
        ("Ta bort mig från er e-postlista.", "sv"),
    ],
)
def test_an_email_list_is_a_mailing_list(text: str, language: str) -> None:
    (hit,) = detect(text)
    assert (hit.channels, hit.language) == (("email",), language)


@pytest.mark.parametrize(
    ("text", "channels"),
    [
        ("Lopettakaa nuo tarjousviestit puhelimeeni, en halua niitä.", ("sms",)),  # messages to a phone
        ("En halua enää paperisia mainoksia kotiin.", ("post",)),
        ("Stop mailing me brochures.", ("post",)),  # "mailing" a printed thing is the post
        ("Stop emailing me brochures.", ("email", "post")),
        ("Älkää soittako puhelimeeni tarjousviesteistä.", ("phone",)),  # a call about messages
    ],
)
def test_the_channel_follows_what_is_sent_where(text: str, channels: tuple[str, ...]) -> None:
    (hit,) = detect(text)
    assert hit.channels == channels


def test_a_misheard_word_lowers_the_confidence() -> None:
    (exact,) = detect("Haluan kieltää kaiken suoramarkkinoinnin.")
    (misheard,) = detect("Haluan keltää kaiken suoramarkkinoinnin.")
    assert misheard.confidence < exact.confidence


@pytest.mark.parametrize(
    "text",
    [
        "En halua maksaa tätä laskua.",
        "Älkää soittako ennen yhdeksää.",
        "Älkää soittako myyntipuheluita ennen yhdeksää.",
        "Voisitteko lähettää e-laskun paperilaskun sijaan?",
        "Haluan tilata uutiskirjeenne.",
        "Markkinointitiimimme ottaa teihin yhteyttä.",
        "Vaimoni ei halua markkinointipuheluita.",
        "Min fru vill inte ha reklam.",
        "My husband does not want marketing calls.",
        "Please do not hesitate to contact our marketing team.",
        "I don't want to miss your offers.",
        "Please subscribe me to your newsletter.",
        "Please stop by our office to hear about the offer.",
        "Ei enää laskuja paperilla, kiitos.",
        "Pyydän, ettei laskua lähetetä vielä.",
        # joining an email list is no ban
        "Add me to your email list.",
        "Lisätkää minut sähköpostilistalle.",
        "Lägg till mig på er e-postlista.",
    ],
)
def test_what_only_looks_like_a_ban_is_not_one(text: str) -> None:
    assert detect(text) == []


def test_only_the_senders_own_words_are_read() -> None:
    body = (
        "Hei,\n"
        "Älkää soittako minulle enää myyntipuheluita.\n"
        "> Kiellän suoramarkkinoinnin.\n"
        "\n"
        "Uutiskirjeemme: To unsubscribe from our newsletter click here.\n"
        "\n"
        "-- \n"
        "Aino, joka ei halua mainoksia\n"
        "Matti kirjoitti 12.11.2026:\n"
        "Poistakaa minut postituslistalta.\n"
    )
    hits = detect(body, regions=email_regions(body))
    assert [h.quote for h in hits] == ["Älkää soittako minulle enää myyntipuheluita."]


def test_everything_after_a_reply_header_is_quoted() -> None:
    body = (
        "Kiitos.\n\nOn Tue, 12 Nov 2026 at 10:00, John <john@example.com> wrote:\n"
        "Unsubscribe me from your newsletter."
    )
    assert detect(body, regions=email_regions(body)) == []
