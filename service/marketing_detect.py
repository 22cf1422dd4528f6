"""Finding "don't market to me" in what a customer said, in Finnish, Swedish and English.

A statement is a ban when, in one sentence, the customer (first person, or an imperative
addressed to the company) refuses or objects to something that is marketing: "kiellän
suoramarkkinoinnin", "älkää soittako minulle enää myyntipuheluita", "ring mig inte mer med
erbjudanden", "unsubscribe me from your newsletter". Words are compared by their Snowball
stems (Finnish and Swedish inflect and compound freely: "myyntipuheluita" stems to
"myyntipuhelu", which contains the cue "puhelu"), and a word one letter away from a cue
counts too, at a lower confidence, because transcripts misspell ("keltää" for "kieltää"); a
long refusal two letters off counts when the language's spelling dictionary does not know the
word (service/lexicon.py: "kiirlän" for "kiellän"; "erbjuder" is a word, and what was said).

What only looks similar is left alone: no marketing word (payment, scheduling, paper or
e-invoices), no refusal (subscribing), someone else's wish ("vaimoni ei halua ..."), the
company's own marketing team, "don't hesitate", "don't want to miss".
Pure functions, no I/O but the dictionaries' one load: the same text always gives the same hits
on a machine with the same dictionaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial

import snowballstemmer

from service.lexicon import known

VERSION = "kirjuri-marketing-4"
LANGUAGES = ("fi", "sv", "en")
_STEMMERS = {"fi": "finnish", "sv": "swedish", "en": "english"}

# Cues are matched against words and their stems. In Finnish and Swedish a cue may sit inside
# a compound ("myyntipuhelu" holds "puhelu"), except a cue written with a leading "^", which
# must start the word ("^soit": "soittako", not "osoite"); in English every cue starts a word.
# A cue of 6+ letters also matches a stem one edit away (recognition errors).
MARKETING = {
    "fi": [
        "markkinoi",
        "mainos",
        "mainok",
        "mainon",
        "^esite",
        "^esittei",
        "myyntipuhelu",
        "myyntisoit",
        "myyntipuhel",
        "tarjouks",
        "tarjous",
        "uutiskirj",
        "postituslist",
        "kampanj",
        "kaupittel",
        "puhelinmyyn",
        "myyntiviest",
        "sähköpostilist",
    ],
    "sv": [
        "marknadsför",
        "reklam",
        "erbjud",
        "nyhetsbrev",
        "utskick",
        "säljsamtal",
        "försälj",
        "kampanj",
        "säljmejl",
        "säljar",
        "katalog",
        "broschyr",
        "postlist",
        "mejllist",
        "maillist",
    ],
    "en": [
        "market",
        "newslett",
        "offer",
        "promot",
        "advert",
        "sale",
        "mailing",
        "spam",
        "telemarket",
        "catalog",
        "brochur",
        "leaflet",
        "flyer",
    ],
}
# marketing named by two words: an email list is a mailing list ("take me off your email list")
MARKETING_PHRASES: dict[str, tuple[str, ...]] = {
    "fi": (),
    "sv": (),
    "en": ("email list", "e-mail list", "emailing list", "e-mailing list"),
}
# the company's own marketing people are not marketing
NOT_MARKETING = {
    "fi": ["markkinointitiim", "markkinointiosast", "markkinointipäällik", "myyntitiim", "myyntiosast"],
    "sv": ["marknadsavdelning", "marknadsteam", "säljavdelning"],
    "en": ["team", "depart", "manag"],
}
# first-person refusals and imperatives addressed to the company: whole words (which may come
# one letter off in a transcript), words ending a compound ("suoramarkkinointikielto"), and
# patterns over the lowercased sentence
REFUSAL_WORDS = {
    "fi": [
        "kiellän",
        "kiellämme",
        "kieltäydyn",
        "älkää",
        "lopettakaa",
        "poistakaa",
        "lopetatte",
        "poistatte",
        "peruutan",
        "perun",
        "lopettaa",
    ],
    "sv": ["avregistrera", "avregistrerar", "förbjuder", "undanber", "avanmäl", "avanmäler", "avböjer"],
    "en": ["unsubscribe", "unsubscribing"],
}
REFUSAL_ENDINGS = {
    "fi": ("kielto", "kiellon", "kieltoa", "kiellot", "kieltoon", "kiellosta"),
    "sv": ("förbud", "spärr"),
    "en": (),
}
# "haluan kieltää": wanting to forbid is a refusal; "voit kieltää" (you may) is not
WANT_TO_FORBID = {"fi": ("haluan", "haluamme", "tahdon", "tahdomme"), "sv": (), "en": ()}
FORBID = {"fi": "kieltää", "sv": "", "en": ""}
# what speech recognition makes of these words, undone before a transcript is read: a
# negation run into its verb ("enhalua"), a dropped ending ("halua keltä" for "haluan
# kieltää"), a dropped prefix ("subscribe me from" is no English but "unsubscribe me from"),
# a Swedish imperative heard as the present tense
HEARD = {
    "fi": [(re.compile(r"\b(en|emme|ei)(halua|tahdo|toivo|hyväksy|salli|suostu)"), r"\1 \2")],
    # "slutar ringa" (stops calling) for the imperative "sluta ringa" (stop calling)
    "sv": [(re.compile(r"\bslutar (ringa|skicka|mejla|maila|kontakta)\b"), r"sluta \1")],
    "en": [(re.compile(r"\bsubscribe (me|us) from\b"), r"unsubscribe \1 from")],
}
HEARD_WANT = {"fi": ("halua",), "sv": (), "en": ()}
REFUSAL = {
    "fi": [
        r"\b(en|emme)\b( \w+)? (halua|tahdo|toivo|hyväksy|salli|anna|suostu|ole kiinnostunut)",
        r"\b(minulle|meille|minua|meitä)\b( \w+)? ei( \w+)? (saa|tarvitse)\b",
        r"\b(voisitteko|voitteko|pyydän|haluan) (lopettaa|poistaa|lakata)\b",
        r"\b(peru[un]|peruutan|perumme) (suostumukse|lupa|luva)",
        r"\bjättäkää minut rauhaan\b",
        r"\bälä\b",
        # "älkää" as a transcript may give it ("helkää", "elkää")
        r"\b[hä]?[eä]?lkää\b",
        # the plural negative imperative of the verbs of marketing ("älkää soittako") is a
        # prohibition even when "älkää" is misheard or run into the next word
        r"\b(soittako|lähettäkö|markkinoiko|mainostako|tarjotko)",
        r"\blopeta\b",
        r"\bpoista\b",
        r"\bei kiitos\b",
        # "pyydän, ettei minulle markkinoida": a request that something not be done
        r"\b(pyydän|pyydämme|toivon|toivomme|vaadin|vaadimme|haluan|haluamme),? "
        r"(ettei|etten|ettemme|ettette|että (ei|en|emme|ette))\b",
        # "Ei enää myyntipuheluita": "no more ..." opening a sentence
        r"^(ei|eikä) (enää|lisää|mitään|yhtään)\b",
        # "miten pääsen pois uutiskirjeestänne": wanting off a list
        r"\b(pääsen|pääsisin|päästä|pääsemme|ottakaa (minut|meidät)) pois\b",
    ],
    "sv": [
        r"\b(jag|vi) (vill|önskar) inte\b",
        r"\bvill (jag|vi) inte\b",
        r"\b(ring|skicka|kontakta|mejla|maila|använd|ringa)( \w+)? inte\b",
        r"\b(vill|önskar) (jag|vi)? ?slippa\b",
        r"\bslipp(a|er)\b",
        r"\b(jag|vi) tackar nej\b",
        r"\binte intresserad",
        r"\b(jag|vi) samtycker inte\b",
        r"\båterkallar (mitt|vårt) samtycke\b",
        r"\binte (ring|skicka|kontakta)",
        r"\bsluta\b",
        r"\bta bort (mig|oss|min|mitt|mina)\b",
        r"\bnej tack\b",
        r"\binvänder\b",
        r"\bmotsätter (mig|oss)\b",
        r"\binga (fler|mer)\b",
    ],
    "en": [
        r"\b(i|we) (do not|don't|dont|never) (want|wish)\b",
        r"\b(i|we) no longer (want|wish)\b",
        r"\b(do not|don't|dont|never) (call|contact|send|email|e-mail|text|phone|ring|mail|market|advertise|"
        r"spam|sell)\b",
        r"\b(stop|quit) (calling|sending|emailing|texting|contacting|mailing|marketing|phoning)\b",
        # "please stop", "stop the promotional texts", "stop it"
        r"\bplease stop\b(?! by\b)",
        r"\bstop (it|this|that|them|the|these|those|all|your)\b",
        r"\b(i'd|i would|we'd|we would) (prefer|rather) not\b",
        r"\b(do not|don't|dont) use (my|our) (data|details|information|address|number|email)\b",
        r"\b(i am|i'm|we are|we're) not interested\b",
        r"\bleave (me|us) alone\b",
        r"\bwithdraw(s|ing|n)? (my|our) consent\b",
        r"\b(i|we) (do not|don't|dont) (want|wish) to (receive|get|hear)\b",
        r"\bno (more|further)\b",
        r"\bremove (me|us|my|our)\b",
        r"\bopt(ing)? (me |us )?out\b",
        r"\btake (me|us|(my|our) \w+) off\b",
        r"\bget (me |us )?off\b",
        r"\b(i|we) object\b",
        r"\b(i|we) forbid\b",
        r"\b(i|we) want to unsubscribe\b",
    ],
}
# the refusal is someone else's, or not a refusal at all
BLOCKERS = {
    "fi": [
        r"\b(vaimo|mie[hs]|puoliso|äiti|isä|naapuri|kollega|ystävä|asiakkaa|veli|sisko|poika|tytär)\w*\b",
        r"\bhän\b",
        r"\bhe eivät\b",
        r"\bepäröi",
        r"\bennen\b",
        r"\bjälkeen\b",
        r"\bmissata\b",
        r"\bmenettää\b",
        r"\btilata\b",
        r"\btilaan\b",
        r"\bhaluan (saada|tilata)\b",
        r"\blaskun?\b",
    ],
    "sv": [
        r"\b(min|mitt|mina) (fru|man|mamma|pappa|granne|kollega|vän|kund)\w*",
        r"\bhan\b",
        r"\bhon\b",
        r"\bde vill\b",
        r"\btveka\b",
        r"\bföre\b",
        r"\befter\b",
        r"\bmissa\b",
        r"\bprenumerera\b",
        r"\bfaktur",
    ],
    "en": [
        r"\b(my|our) (wife|husband|partner|mother|father|neighbou?r|colleague|friend|customer|client|son|"
        r"daughter|boss)\b",
        r"\b(he|she|they) (does|do|did)n'?t\b",
        r"\bdoesn'?t\b",
        r"\bhesitate\b",
        r"\bbefore\b",
        r"\bafter\b",
        r"\bmiss\b",
        r"\bsubscribe (me )?to\b",
        r"\binvoice",
        r"\bbill\b",
    ],
}
CHANNELS = {
    "phone": {
        "fi": ["^soit", "myyntisoit", "puhelu", "puhelin", "puhel", "soitto"],
        "sv": ["^ring", "uppring", "samtal", "telefon"],
        "en": ["call", "phone", "telemarket", "ring"],
    },
    "email": {
        "fi": ["sähköpost", "uutiskirj", "postituslist", "meil", "email", "sposti"],
        "sv": ["e-post", "epost", "mejl", "mail", "nyhetsbrev", "utskick"],
        "en": ["email", "e-mail", "newslett", "mailing", "unsubscrib", "inbox", "list"],
    },
    "sms": {"fi": ["tekstiviest", "sms", "tekstari"], "sv": ["sms", "textmeddeland"], "en": ["sms", "text"]},
    "post": {
        "fi": ["kirje", "kirjeit", "postits", "mainospost", "paperi", "postiluukk", "^esite"],
        "sv": ["brev", "^post", "katalog", "broschyr", "papper"],
        "en": ["letter", "post", "postal", "brochur", "catalog", "leaflet", "flyer", "paper"],
    },
}
# "tarjousviestit puhelimeeni": messages to a phone are text messages, not calls
CALLING = {"fi": ["^soit", "puhelu", "soitto"], "sv": ["^ring", "samtal"], "en": ["call", "ring"]}
# "mailing me brochures": in English "mail" may be the post; with a printed thing named it is
MAIL_ONLY = {"fi": (), "sv": (), "en": ("mailing", "mail", "mails", "mailed")}
PRINTED = {
    "fi": ["kirje", "^esite", "paperi"],
    "sv": ["brev", "katalog", "broschyr", "papper"],
    "en": ["letter", "brochur", "catalog", "leaflet", "flyer", "paper"],
}
# a marketing message without a channel, said in an email, is about email
MESSAGE_WORDS = {"fi": ["viest"], "sv": ["meddeland"], "en": ["messag"]}
_STOPWORDS = {
    "fi": {"ja", "en", "ei", "minä", "minulle", "olen", "on", "että", "kiitos", "enää", "älkää", "tämä"},
    "sv": {"och", "jag", "inte", "mig", "det", "är", "att", "med", "mer", "vill", "tack", "ni"},
    "en": {"and", "i", "not", "me", "the", "is", "to", "with", "more", "want", "your", "you", "please"},
}
_WORD = re.compile(r"[\w'-]+", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*", re.UNICODE)


# typed text is read as written; transcripts are also read one letter off
TYPED = ("email", "chat")
# any cue of marketing, of any language: typed text without one needs no closer look
_MARKETING_CUES = tuple(
    sorted(
        {c.lstrip("^") for cues in MARKETING.values() for c in cues}
        | {p for phrases in MARKETING_PHRASES.values() for p in phrases}
    )
)


@dataclass(frozen=True)
class Hit:
    """One statement that forbids marketing: where it is in the text and what it covers."""

    channels: tuple[str, ...]
    language: str
    confidence: float
    quote: str
    start: int  # character offsets into the text given
    end: int


@lru_cache(maxsize=8192)
def _stem(language: str, word: str) -> str:
    return str(snowballstemmer.stemmer(_STEMMERS[language]).stemWord(word))


def _near(a: str, b: str) -> bool:
    """One insertion, deletion or substitution apart."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance: the letters of two words (a misheard word here), or the words
    of two texts (the transcription bench's word error rate)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[len(b)]


def _find(
    cues: Iterable[str], words: Sequence[str], stems: Sequence[str], compounds: bool = True
) -> tuple[bool, bool]:
    """(found exactly, found one letter off) for any cue among the words or their stems: inside
    a word where words compound (fi, sv) unless the cue starts with "^", at its start otherwise."""
    fuzzy = False
    for cue in cues:
        anchored = cue.startswith("^") or not compounds
        cue = cue.lstrip("^")
        for word, stem in zip(words, stems, strict=True):
            if (
                word.startswith(cue)
                or stem.startswith(cue)
                or (not anchored and (cue in stem or cue in word))
            ):
                return True, False
            if (
                len(cue) >= 6
                and len(word) >= 6
                and (_near(cue, stem[: len(cue)]) or _near(cue, stem[: len(cue) + 1]) or _near(cue, stem))
            ):
                fuzzy = True
    return False, fuzzy


def _refusal(language: str, words: Sequence[str], lower: str, fuzzy: bool) -> tuple[bool, bool]:
    """(refused in so many words, refused with a word one letter off: looked for only when
    `fuzzy`, in transcripts, where recognition errors are; typed text is read as written)."""
    cues = REFUSAL_WORDS[language]
    if _any(REFUSAL[language], lower) or any(
        w in cues or w.endswith(REFUSAL_ENDINGS[language]) for w in words
    ):
        return True, False
    wanted = [words[i + 1] for i, w in enumerate(words[:-1]) if w in WANT_TO_FORBID[language]]
    if any(w == FORBID[language] for w in wanted):
        return True, False
    if not fuzzy:
        return False, False
    near = [c for c in cues if len(c) >= 5] + ([FORBID[language]] if wanted else [])
    if any(_near(w, cue) for w in words if len(w) >= 5 for cue in near):
        return False, True
    # two letters off a long refusal, and no word of the language: what recognition made of it
    # ("kiirlän" for "kiellän", "terbjuder" for "förbjuder"; "erbjuder", offers, is a word)
    far = [c for c in cues if len(c) >= 7]
    if any(
        edit_distance(w, cue) <= 2 and known(language, w) is False
        for w in words
        if len(w) >= 6
        for cue in far
        if abs(len(w) - len(cue)) <= 2
    ):
        return False, True
    # "halua keltä kaiken …": a misheard want, then forbid two letters off
    heard = [
        words[i + 1] for i, w in enumerate(words[:-1]) if w in WANT_TO_FORBID[language] + HEARD_WANT[language]
    ]
    forbid = FORBID[language]
    return False, bool(forbid) and any(len(w) >= 4 and edit_distance(w, forbid) <= 2 for w in heard)


@lru_cache(maxsize=16)
def _alternation(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled regex for a list of patterns (one search instead of one per pattern)."""
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def _any(patterns: Sequence[str], text: str) -> bool:
    return _alternation(tuple(patterns)).search(text) is not None


def _words(lower: str) -> list[str]:
    return [w for w in (w.strip("'-") for w in _WORD.findall(lower)) if w]


def _sentence_hit(
    lower: str, words: Sequence[str], language: str, source: str | None
) -> tuple[tuple[str, ...], float] | None:
    """The channels and confidence of a ban stated in this one (lowercased) sentence, or None."""
    # cheapest test first: most sentences refuse nothing, and need no stemming
    transcript = source not in TYPED
    refused, refused_fuzzy = _refusal(language, words, lower, fuzzy=transcript)
    if not (refused or refused_fuzzy) or _any(BLOCKERS[language], lower):
        return None
    stems = [_stem(language, w) for w in words]
    find = partial(_find, compounds=language != "en")
    # the company's own marketing people are not marketing: leave out the words naming them
    own = {i for i, stem in enumerate(stems) if any(c in stem for c in NOT_MARKETING[language])}
    if language == "en":  # "marketing team": the word before the team
        own = {i - 1 for i in own if i > 0} | own
    kept = [i for i in range(len(words)) if i not in own]
    marketing, marketing_fuzzy = find(MARKETING[language], [words[i] for i in kept], [stems[i] for i in kept])
    marketing_fuzzy = marketing_fuzzy and transcript
    marketing = marketing or any(p in lower for p in MARKETING_PHRASES[language])
    if not (marketing or marketing_fuzzy):
        return None
    channels = []
    taken: set[int] = set()  # "uutiskirje", "nyhetsbrev", "e-post" are email, not post
    for channel, cues in CHANNELS.items():
        rest = [i for i in range(len(words)) if i not in taken]
        hits = [
            i for i in rest if any(find(cues[language], [words[i]], [stems[i]])[: 2 if transcript else 1])
        ]
        if hits:
            channels.append(channel)
            taken.update(hits)
    if "phone" in channels and "sms" not in channels and find(MESSAGE_WORDS[language], words, stems)[0]:
        if not find(CALLING[language], words, stems)[0]:
            channels = [c for c in channels if c != "phone"] + ["sms"]
    if {"email", "post"} <= set(channels) and find(PRINTED[language], words, stems)[0]:
        emails = [
            i for i in range(len(words)) if find(CHANNELS["email"][language], [words[i]], [stems[i]])[0]
        ]
        if all(words[i] in MAIL_ONLY[language] for i in emails):
            channels.remove("email")
    channels.sort()
    if not channels and source == "email" and find(MESSAGE_WORDS[language], words, stems)[0]:
        channels = ["email"]
    confidence = 0.9 - (0.2 if not marketing else 0) - (0.2 if not refused else 0)
    return tuple(channels) or ("all",), round(confidence, 2)


def _guess(words: set[str], lower: str) -> str:
    """fi, sv or en by the common words of a (lowercased) sentence; Finnish when nothing tells."""
    scores = {lang: len(words & stop) for lang, stop in _STOPWORDS.items()}
    if re.search(r"[äö]", lower) and "å" not in lower:
        scores["fi"] += 1
    if "å" in lower:
        scores["sv"] += 2
    return max(LANGUAGES, key=lambda lang: (scores[lang], lang == "fi"))


def sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (and lines) of `text`, stripped of outer spaces."""
    spans = []
    for m in _SENTENCE.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def detect(
    text: str,
    language: str | None = None,
    regions: Sequence[tuple[int, int]] | None = None,
    source: str | None = None,
) -> list[Hit]:
    """Marketing bans stated in `text` (within `regions` only, when given: the parts that
    are the customer's own words). `language` None or "auto" guesses per sentence; `source`
    is the channel the text came by ("marketing messages" said in an email mean email)."""
    hits = []
    for region_start, region_end in regions if regions is not None else [(0, len(text))]:
        part = text[region_start:region_end]
        for start, end in sentences(part):
            sentence = part[start:end]
            lower = sentence.lower()
            if source in TYPED and not any(cue in lower for cue in _MARKETING_CUES):
                continue
            words = _words(lower)
            tried = [language] if language in LANGUAGES else [_guess(set(words), lower)]
            tried += [lang for lang in LANGUAGES if lang not in tried]
            for lang in tried:
                said = lower
                if source not in TYPED:
                    for pattern, repl in HEARD[lang]:
                        said = pattern.sub(repl, said)
                found = _sentence_hit(said, _words(said) if said != lower else words, lang, source)
                if found:
                    channels, confidence = found
                    if lang != tried[0]:
                        confidence -= 0.1
                    hits.append(
                        Hit(
                            channels,
                            lang,
                            round(confidence, 2),
                            sentence,
                            region_start + start,
                            region_start + end,
                        )
                    )
                    break
    return hits


# where a reply's quoted part starts: "On … wrote:", "… kirjoitti:", "… skrev:", forwarded
# or original-message separators, Outlook's header block
_QUOTE_START = re.compile(
    r"^(on\b.*\bwrote:?|.*\bkirjoitti\b.*:?|.*\bskrev\b.*:?|-{2,}\s*(original message|alkuperäinen viesti|"
    r"ursprungligt meddelande|forwarded message|välitetty viesti|vidarebefordrat meddelande)\s*-{2,}|"
    r"(from|lähettäjä|från):\s.*)$",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^--\s*$")
# a company newsletter's footer: how to unsubscribe is not the customer asking to
_FOOTER = re.compile(
    "|".join(
        [
            r"unsubscribe (here|at|below)",
            r"(^|[.!?]\s+)to unsubscribe",
            r"click here",
            r"if you no longer wish",
            r"you are receiving this",
            r"this (e-?mail|message) was sent",
            r"peruu?ta tilaus",
            r"peru tilaus",
            r"jos et halua (enää )?vastaanottaa",
            r"jos et halua enää",
            r"tämä viesti on lähetetty",
            r"vill du inte längre",
            r"avregistrera dig",
            r"du får detta",
            r"detta meddelande skickades",
        ]
    ),
    re.IGNORECASE,
)

# words without which neither pattern can match: only lines holding one are tried against
# them (the patterns backtrack over every position of every line of a long mail)
_CUES = (
    *("wrote", "kirjoitti", "skrev", "--", "from:", "lähettäjä:", "från:"),
    *("unsubscribe", "click here", "no longer wish", "receiving this", "was sent", "ta tilaus"),
    *("peru tilaus", "jos et halua", "lähetetty", "längre", "avregistrera", "du får detta", "skickades"),
)


def _cue_positions(body: str) -> list[int]:
    """Where a cue starts in `body`, in order; every line start if lowercasing changed the
    text's length (then positions in the lowered text would not be positions in `body`)."""
    lower = body.lower()
    if len(lower) != len(body):
        return list(range(len(body)))
    found = []
    for cue in _CUES:
        at = lower.find(cue)
        while at >= 0:
            found.append(at)
            at = lower.find(cue, at + 1)
    return sorted(found)


def email_regions(body: str) -> list[tuple[int, int]]:
    """The spans of an email body that are the sender's own words: not quoted lines (`>`), not
    what follows "On … wrote:" / "… kirjoitti:" / "… skrev:" or a forwarded-message separator,
    not the signature after "-- ", and not a newsletter footer's paragraph."""
    cues = iter([*_cue_positions(body), len(body)])
    cue = next(cues)
    regions: list[tuple[int, int]] = []
    offset = 0
    in_footer = False
    for line in body.splitlines(keepends=True):
        start, text = offset, line.strip()
        offset += len(line)
        cued = cue < offset
        while cue < offset:
            cue = next(cues)
        if cued and (_QUOTE_START.match(text) or _SIGNATURE.match(line.rstrip("\r\n"))):
            break
        if not text:
            in_footer = False
            continue
        if cued and _FOOTER.search(text):
            in_footer = True
        if in_footer or text.startswith(">"):
            continue
        regions.append((start, start + len(line.rstrip("\r\n"))))
    return regions
