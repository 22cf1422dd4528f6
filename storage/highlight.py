"""Snippets of a PostgreSQL search result, cut in Python around the words that matched.

`ts_headline` parses and stems the whole of every text it is given: 10.6 ms of a 29 ms
search for 50 results at a million interactions, the largest part of it. Only the words that
can match need stemming: a word whose stem is a query lexeme begins with the lexeme's first
letters (stemmers change a word's ending), so one regular expression finds the candidate
words of each text (`candidate_words`), the server stems just those, once each, in the
text's own configuration (the caller asks it), and `cut_snippet` marks the ones whose stem
the query holds. Stemming in Python instead (`snowballstemmer`) would be the same algorithm
in whatever version each side ships, free to disagree with the index; the server's stems
are the index's by construction. A text in which this finds no match (the match was in
the participants, or in a token the server parses differently, such as an email address)
is left to `ts_headline` by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

WINDOW = 16  # words in a snippet, as SQLite's snippet() and ts_headline's MaxWords give
LEAD = 3  # words before the first match in its window
MAX_CANDIDATES = 48  # candidate words of one text looked at (a window holds 16)
REACH = 100  # characters after a match that the rest of its window takes, about
HEAD = 3  # letters of a lexeme that a candidate word must begin with, at least
_TOKEN = re.compile(r"'((?:[^'\\]|''|\\.)*)'(:\*[A-D]*)?|[!()]")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Lexemes:
    """What a match can contain: stems that must equal a word's stem, and prefixes of stems."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    def candidates(self) -> re.Pattern[str] | None:
        """Words (of a case-folded text) that begin as some lexeme does; None when there are
        none. A stem keeps all but its last letters as the word had them ("viikko" stems
        to "viiko", "happy" to "happi"), so a lexeme's letters but its last two, at least
        HEAD of them, begin every word that stems to it."""
        heads = sorted({w[: max(HEAD, len(w) - 2)] for w in (*self.exact, *self.prefixes) if w})
        if not heads:
            return None
        # no look-behind for the word's start: it made the scan ten times slower (the
        # caller checks the start of each candidate instead)
        return re.compile("(?:" + "|".join(map(re.escape, heads)) + r")\w*")

    def matches(self, stem: str) -> bool:
        return stem in self.exact or any(stem.startswith(p) for p in self.prefixes)


def tsquery_lexemes(stemmed: str) -> Lexemes:
    """The lexemes of a tsquery's text (`CAST(q AS text)`) that a matching text contains:
    every quoted lexeme that no `!` negates (`!'x'` or `!( … )`)."""
    exact: set[str] = set()
    prefixes: list[str] = []
    negated = [False]  # per open parenthesis
    pending = False  # a `!` waiting for its operand
    for m in _TOKEN.finditer(stemmed):
        token = m.group()
        if token == "!":
            pending = not pending
        elif token == "(":
            negated.append(negated[-1] ^ pending)
            pending = False
        elif token == ")":
            if len(negated) > 1:
                negated.pop()
        else:
            if not (negated[-1] ^ pending):
                lexeme = re.sub(r"\\(.)", r"\1", m.group(1).replace("''", "'"))
                (prefixes.append(lexeme) if m.group(2) else exact.add(lexeme))
            pending = False
    return Lexemes(frozenset(exact), tuple(prefixes))


@lru_cache(maxsize=64)
def _candidates(lexemes: Lexemes) -> re.Pattern[str] | None:
    return lexemes.candidates()


def _folded(text: str) -> str:
    """The text in lower case letter for letter, so its matches' places are the text's (a
    word whose lower case is longer, as "İ"'s is, is left as it is)."""
    folded = text.lower()
    if len(folded) == len(text):
        return folded
    return _WORD.sub(lambda m: w if len(w := m.group().lower()) == len(m.group()) else m.group(), text)


def candidate_words(text: str, lexemes: Lexemes) -> list[tuple[int, int, str]]:
    """(start, end, word in lower case) of the words of `text` that may stem to a lexeme,
    the first MAX_CANDIDATES of them."""
    pattern = _candidates(lexemes)
    if pattern is None:
        return []
    folded = _folded(text)
    found = []
    for m in pattern.finditer(folded):
        at = m.start()
        if at and (folded[at - 1].isalnum() or folded[at - 1] == "_"):
            continue  # inside a word
        found.append((at, m.end(), m.group()))
        if len(found) == MAX_CANDIDATES:
            break
    return found


def cut_snippet(text: str, hits: Sequence[tuple[int, int]], start: str, end: str) -> str:
    """About WINDOW words of `text` where the matched words (`hits`: spans in text order, at
    least one) are thickest, each of them between `start` and `end`, "…" where words are
    left out. Only the words near the matches are looked at."""
    # the match followed by the most others within a window's reach, the earliest of equals
    best, best_count, j = 0, 0, 0
    for i, (s, _) in enumerate(hits):
        j = max(j, i)
        while j + 1 < len(hits) and hits[j + 1][0] - s < REACH:
            j += 1
        if j - i + 1 > best_count:
            best, best_count = i, j - i + 1
    at = hits[best][0]
    lead_from = max(0, at - LEAD * 24)
    before = [m.span() for m in _WORD.finditer(text, lead_from, at)]
    if before and lead_from > 0 and before[0][0] == lead_from and _WORD.match(text, lead_from - 1):
        before = before[1:]  # the slice began inside a word
    before = before[-LEAD:]
    after = []
    for m in _WORD.finditer(text, at):
        after.append(m.span())
        if len(before) + len(after) == WINDOW:
            break
    lo = before[0][0] if before else at
    hi = after[-1][1]
    more = _WORD.search(text, hi) is not None
    out = ["…"] if _WORD.search(text, 0, lo) else []
    pos = lo
    for s, e in hits:
        if lo <= s and e <= hi:
            out += [text[pos:s], start, text[s:e], end]
            pos = e
    out.append(text[pos:hi] if more else text[pos:].rstrip())
    if more:
        out.append("…")
    return "".join(out)
