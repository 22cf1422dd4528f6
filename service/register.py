"""The register description (the privacy notice's sections) that access exports state.

Read from `[rights] register_file` (default `config/register.toml`): one table per section
with a Finnish and an English title and text. A description lacking a section the law asks
for is a configuration error at start, not a gap found in an export.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from service.errors import ConfigError

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config" / "register.toml"
REQUIRED = (
    "controller",
    "contact",
    "register_name",
    "purposes",
    "data_content",
    "sources",
    "disclosures",
    "security",
)
LANGUAGES = ("fi", "en")


@dataclass(frozen=True)
class Section:
    """One section of the register description, in Finnish and English."""

    key: str
    title: dict[str, str]
    text: dict[str, str]


def load_register(register_file: str) -> list[Section]:
    """The sections in file order; raises ConfigError naming the file and what is missing."""
    path = Path(register_file) if register_file else DEFAULT_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"register description not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{path} lacks the section(s) {', '.join(missing)}")
    sections = []
    for key, table in data.items():
        title = table.get("title") if isinstance(table, dict) else None
        if not isinstance(title, dict) or any(
            not isinstance(title.get(lang), str) or not isinstance(table.get(lang), str) for lang in LANGUAGES
        ):
            raise ConfigError(
                f"{path}: [{key}] needs title = {{ fi = ..., en = ... }}, fi = ... and en = ..."
            )
        sections.append(
            Section(key, {lang: title[lang] for lang in LANGUAGES}, {lang: table[lang] for lang in LANGUAGES})
        )
    return sections
