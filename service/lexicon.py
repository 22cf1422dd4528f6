"""Whether a word is a word of Finnish, Swedish or English, asked of the spelling dictionaries
Debian ships: Voikko's (voikko-fi, through libvoikko) for Finnish, which knows its inflections
and compounds, and Hunspell's (hunspell-sv, hunspell-en-us, read by spylls) for the others.

The marketing detector asks it about transcripts: speech recognition turns a word into one
the language does not have ("kiirlän" for "kiellän", "terbjuder" for "förbjuder"), and a word
two letters from a refusal is that refusal only when it is no word itself ("erbjuder", offers,
is what was said). Without a dictionary the answer is None and the detector does not guess.
Dictionaries load once per process, on first use; lookups are serialised (libvoikko's handle
is not for concurrent use).
"""

from __future__ import annotations

import gc
import threading
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path

HUNSPELL_DIR = Path("/usr/share/hunspell")
HUNSPELL = {"sv": "sv_SE", "en": "en_US"}
_LOCK = threading.Lock()


@cache
def _speller(language: str) -> Callable[[str], bool] | None:
    """The spell check of one language, or None when its dictionary is not installed."""
    if language == "fi":
        try:
            import libvoikko
        except ImportError:
            return None
        try:
            voikko = libvoikko.Voikko("fi")
        except (OSError, libvoikko.VoikkoException):  # no libvoikko1, or no voikko-fi dictionary
            return None
        return lambda word: bool(voikko.spell(word))
    name = HUNSPELL.get(language)
    if name is None or not (HUNSPELL_DIR / f"{name}.dic").exists():
        return None
    try:
        from spylls.hunspell import Dictionary
    except ImportError:
        return None
    with warnings.catch_warnings():  # spylls leaves its .aff/.dic files for the collector to close
        warnings.simplefilter("ignore", ResourceWarning)
        dictionary = Dictionary.from_files(str(HUNSPELL_DIR / name))
        gc.collect()
    return lambda word: bool(dictionary.lookup(word))


def known(language: str, word: str) -> bool | None:
    """True when `word` is a word of the language, False when its dictionary does not know it,
    None when there is no dictionary for the language on this machine."""
    with _LOCK:
        speller = _speller(language)
        return None if speller is None else speller(word)


def available(language: str) -> bool:
    """Whether this machine has the dictionary of `language` (the README says how to install)."""
    with _LOCK:
        return _speller(language) is not None
