"""Configuration: defaults, file and environment overrides, clear errors, every key documented."""

from __future__ import annotations

import re
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.settings import DEFAULTS_FILE, Settings, load_settings


def test_defaults_are_the_documented_contract() -> None:
    s = load_settings(environ={})
    assert s.smtp.accept == ["@localhost"]
    assert s.smtp.max_message_bytes == 25 * 1024 * 1024
    assert (s.http.host, s.http.port, s.smtp.port) == ("127.0.0.1", 8080, 2525)
    assert s.storage.url == ""
    assert s.storage.database_url.startswith("sqlite+aiosqlite:///")
    assert s.linking.default_region == "FI"


def test_config_file_then_environment_override(tmp_path: Path) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text('[smtp]\naccept = ["journal@firma.fi"]\nport = 2600\n[linking]\ndefault_region = "SE"\n')
    s = load_settings(
        cfg,
        environ={
            "KIRJURI_SMTP_ACCEPT": "a@b.fi, @c.fi",
            "KIRJURI_HTTP_PORT": "9000",
            "KIRJURI_SMTP_AUTH_REQUIRED": "true",
            "KIRJURI_UNRELATED": "x",
        },
    )
    assert s.smtp.accept == ["a@b.fi", "@c.fi"]
    assert s.smtp.port == 2600
    assert s.http.port == 9000
    assert s.smtp.auth_required is True
    assert s.linking.default_region == "SE"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[smtp]\nportt = 1\n", {}, "unknown key 'portt' in [smtp]"),
        ("[nosuch]\n", {}, "unknown section [nosuch]"),
        ("[smtp]\nport = 'x'\n", {}, "[smtp] port must be a whole number"),
        ("", {"KIRJURI_HTTP_PORT": "eighty"}, "[http] port must be a whole number"),
        ("[smtp\n", {}, "is not valid TOML"),
    ],
)
def test_bad_configuration_names_what_is_wrong(tmp_path: Path, text: str, env: dict, message: str) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(cfg, environ=env)


def test_database_url_is_masked_in_repr() -> None:
    s = load_settings(environ={"KIRJURI_STORAGE_URL": "postgresql+asyncpg://k:hunter2@db/k"})
    assert "hunter2" not in repr(s)
    assert s.storage.database_url.endswith("hunter2@db/k")


def test_every_setting_is_in_the_defaults_file_with_a_comment() -> None:
    lines = DEFAULTS_FILE.read_text().splitlines()
    section = None
    in_table = False  # inside a table-valued key, whose keys are its values, not settings
    documented: set[tuple[str, str]] = set()
    for i, line in enumerate(lines):
        if m := re.match(r"^\[(\w+)\]$", line):
            section, in_table = m.group(1), False
        elif m := re.match(r"^\[(\w+)\.(\w+)\]$", line):  # [transcription.hotwords_by_language]
            assert lines[i - 1].startswith("#"), f"[{m.group(1)}] {m.group(2)} has no comment"
            documented.add((m.group(1), m.group(2)))
            in_table = True
        elif not in_table and (m := re.match(r"^(\w+) = ", line)):
            # a comment directly above, or above a run of related keys (tls_cert/tls_key)
            j = i - 1
            while j >= 0 and re.match(r"^\w+ = ", lines[j]):
                j -= 1
            assert lines[j].startswith("#"), f"[{section}] {m.group(1)} has no comment"
            documented.add((str(section), m.group(1)))
    hints = typing.get_type_hints(Settings)
    expected = {
        (section.name, key.name) for section in fields(Settings) for key in fields(hints[section.name])
    }
    assert expected == documented
