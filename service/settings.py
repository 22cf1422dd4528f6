"""Typed settings, loaded once and passed down.

Order of precedence (later wins): `config/kirjuri.toml` defaults, a `--config FILE` merged
over them, then `KIRJURI_<SECTION>_<KEY>` environment variables, then command-line flags.
Nothing here is global: `load_settings` returns a frozen value that the app factory wires in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from service.errors import ConfigError

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "kirjuri.toml"
ENV_PREFIX = "KIRJURI_"


class Secret(str):
    """A string whose repr and str in logs never show the value (database URLs with passwords)."""

    def __repr__(self) -> str:
        return "Secret('**********')" if self else "Secret('')"

    def reveal(self) -> str:
        """The real value, for the one place that needs it."""
        return str.__str__(self)


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576
    session_ttl_minutes: int = 480
    ui_idle_minutes: int = 30
    secure_cookies: bool = False
    login_max_failures: int = 5
    login_lock_minutes: int = 15


@dataclass(frozen=True)
class SmtpSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = "kirjuri.localhost"
    accept: list[str] = field(default_factory=lambda: ["@localhost"])
    max_message_bytes: int = 26_214_400
    max_connections: int = 64
    session_timeout: int = 300
    command_call_limit: int = 100
    local_part_limit: int = 64
    tls_cert: str = ""
    tls_key: str = ""
    require_starttls: bool = False
    auth_required: bool = False
    processes: int = 1


@dataclass(frozen=True)
class StorageSettings:
    data_dir: str = "var"
    url: Secret = Secret("")
    max_batch: int = 64
    blob_url: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: Secret = Secret("")

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL to connect to: the configured one or SQLite in the data dir."""
        if self.url:
            return self.url.reveal()
        return f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'kirjuri.db'}"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def blob_dir(self) -> Path:
        return self.data_path / "blobs"


@dataclass(frozen=True)
class IngestSettings:
    parse_workers: int = 1
    process_parse_min_bytes: int = 1_048_576
    max_body_chars: int = 1_000_000
    switch_interval_ms: float = 0.5


@dataclass(frozen=True)
class CallsSettings:
    watch_dir: str = ""
    channel_layout: str = "stereo"
    settle_seconds: float = 2.0
    poll_seconds: float = 1.0
    max_audio_bytes: int = 209_715_200


@dataclass(frozen=True)
class ChatSettings:
    secret: Secret = Secret("")
    signature_tolerance: int = 300


@dataclass(frozen=True)
class MarketingSettings:
    enabled: bool = True
    workers: int = 1
    auto_apply: bool = False
    auto_apply_threshold: float = 0.85
    hash_key: Secret = Secret("")


@dataclass(frozen=True)
class TranscriptionSettings:
    enabled: bool = True
    backend: str = "faster-whisper"
    model: str = ""
    language: str = "fi"
    workers: int = 2
    cpu_threads: int = 1
    compute_type: str = "int8"
    beam_size: int = 5
    vad: bool = True
    hotwords: list[str] = field(default_factory=list)
    hotwords_language: str = "fi"
    hotwords_by_language: dict[str, list[str]] = field(default_factory=dict)
    no_repeat_ngram_size: int = 0
    temperature_fallback: bool = False
    max_attempts: int = 3
    retry_seconds: int = 30


@dataclass(frozen=True)
class PluginSettings:
    modules: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookSettings:
    enabled: bool = True
    max_attempts: int = 8
    backoff_seconds: float = 5.0
    max_backoff_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 2.0


@dataclass(frozen=True)
class RightsSettings:
    register_file: str = ""


@dataclass(frozen=True)
class RetentionSettings:
    enabled: bool = True
    email_months: int = 72
    call_months: int = 12
    chat_months: int = 24
    check_hours: float = 24.0

    def months(self, channel: str) -> int:
        """How many months interactions of `channel` are kept (0: without a limit)."""
        return int(getattr(self, f"{channel}_months", 0))


@dataclass(frozen=True)
class LinkingSettings:
    default_region: str = "FI"
    internal_domains: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    log_personal_data: bool = False


@dataclass(frozen=True)
class Settings:
    """All of Kirjuri's configuration, one attribute per TOML section."""

    http: HttpSettings = field(default_factory=HttpSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    calls: CallsSettings = field(default_factory=CallsSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    transcription: TranscriptionSettings = field(default_factory=TranscriptionSettings)
    marketing: MarketingSettings = field(default_factory=MarketingSettings)
    linking: LinkingSettings = field(default_factory=LinkingSettings)
    rights: RightsSettings = field(default_factory=RightsSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    def replace(self, section: str, **values: Any) -> Settings:
        """A copy with some keys of one section changed (command-line flags, tests)."""
        current = getattr(self, section)
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **values)})


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in fields(Settings)}


def _coerce(section: str, key: str, value: Any, hint: Any, from_env: bool) -> Any:
    where = f"[{section}] {key}"
    origin = typing.get_origin(hint)
    if origin is dict:  # language -> words; from the environment as JSON
        if from_env and isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError:
                raise ConfigError(
                    f'{where} must be JSON in the environment, such as {{"sv": ["reklam"]}}'
                ) from None
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(w, str) for w in v)
            for k, v in value.items()
        ):
            raise ConfigError(f"{where} must be a table of lists of strings")
        return {k: list(v) for k, v in value.items()}
    if origin is list:
        if from_env and isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        return list(value)
    if hint is bool:
        if from_env and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
        return value
    if hint is int:
        if from_env and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"{where} must be a whole number, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number")
        return value
    if hint is float:
        if from_env and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number")
        return float(value)
    if hint in (str, Secret) or isinstance(hint, types.UnionType):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string")
        return Secret(value) if hint is Secret else value
    raise ConfigError(f"{where} has an unsupported type")  # pragma: no cover - programming error


def _apply(settings: Settings, data: Mapping[str, Any], source: str, from_env: bool = False) -> Settings:
    sections = _section_types()
    for section, values in data.items():
        if section not in sections:
            raise ConfigError(f"{source}: unknown section [{section}]")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
        cls = sections[section]
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        coerced = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown key {key!r} in [{section}]")
            coerced[key] = _coerce(section, key, value, hints[key], from_env)
        settings = settings.replace(section, **coerced)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    sections = _section_types()
    found: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section not in sections or not key:
            continue  # other KIRJURI_* variables (e.g. test switches) are not settings
        found.setdefault(section, {})[key] = value
    return found


def load_settings(
    config_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read defaults, then the optional config file, then environment overrides.

    Raises ConfigError naming the file, section and key that is wrong.
    """
    settings = _apply(Settings(), _read_toml(DEFAULTS_FILE), str(DEFAULTS_FILE))
    if config_file is not None:
        settings = _apply(settings, _read_toml(Path(config_file)), str(config_file))
    env = os.environ if environ is None else environ
    return _apply(settings, _env_overrides(env), "environment", from_env=True)
