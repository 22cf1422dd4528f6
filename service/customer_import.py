"""`kirjuri customers import FILE.csv`: customers from a CRM export, one row at a time.

Each row is the same upsert as `PUT /api/v1/customers/external/{source}/{external_id}`, in
its own transaction: a bad row is reported with its line number and reason and changes
nothing, good rows go in, and running the same file again changes nothing. Columns are
matched to fields by their header (Finnish or English, any case: `nimi`/`name`,
`y-tunnus`/`business_id`, `sähköposti`/`email`, ...) or by `--map COLUMN=FIELD`. The
delimiter (`,` `;` or tab, as Excel writes in Finland) is detected; a UTF-8 BOM is skipped.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.access import Principal
from service.customers import ALL_FIELDS, parse_customer, upsert_external
from service.errors import InvalidInput, KirjuriError
from storage.engine import Database
from storage.errors import StorageError

HEADERS = {
    "external_id": ("external_id", "id", "crm_id", "asiakasnumero", "tunnus"),
    "name": ("name", "nimi", "yritys", "company"),
    "business_id": ("business_id", "y-tunnus", "ytunnus", "y_tunnus"),
    "emails": ("email", "emails", "e-mail", "sähköposti", "sahkoposti"),
    "phones": ("phone", "phones", "puhelin", "puhelinnumero", "gsm"),
    "address": ("address", "osoite"),
    "bank_account": ("bank_account", "iban", "tilinumero", "pankkitili"),
    "contact_person": ("contact_person", "yhteyshenkilö", "yhteyshenkilo", "contact"),
    "notes": ("notes", "lisätiedot", "muistiinpanot"),
    "personal_id": ("personal_id", "hetu", "henkilötunnus", "henkilotunnus"),
}
LIST_SPLIT = re.compile(r"[\s,;]+")


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do), with every bad row explained."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [{"line": line, "reason": reason} for line, reason in self.errors],
        }


def column_map(headers: Iterable[str], overrides: Mapping[str, str]) -> dict[str, str]:
    """Column -> field: the overrides first, then known header names. Raises InvalidInput
    for an override naming an unknown field, or when no column holds the external id."""
    known = {alias: name for name, aliases in HEADERS.items() for alias in aliases}
    mapping: dict[str, str] = {}
    for column in headers:
        if column in overrides:
            target = overrides[column]
            if target not in ALL_FIELDS | {"external_id"}:
                raise InvalidInput(f"--map {column}={target}: {target} is not a customer field", "map")
            mapping[column] = target
        elif column.strip().lower() in known:
            mapping[column] = known[column.strip().lower()]
    if "external_id" not in mapping.values():
        raise InvalidInput("no column holds the customers' ids in the CRM (name it external_id or use --map)")
    return mapping


def _body(row: Mapping[str, str | None], mapping: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {}
    external_id = ""
    for column, target in mapping.items():
        value = (row.get(column) or "").strip()
        if target == "external_id":
            external_id = value
        elif target in ("emails", "phones"):
            if value:
                body[target] = (
                    [v for v in LIST_SPLIT.split(value) if v]
                    if target == "emails"
                    else [v.strip() for v in re.split(r"[,;]", value) if v.strip()]
                )
        elif value:
            body[target] = value
    return external_id, body


def read_csv(path: Path) -> str:
    """The file's text (UTF-8, a BOM skipped); raises InvalidInput if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


async def import_csv(
    db: Database, text: str, source: str, region: str, overrides: Mapping[str, str], dry_run: bool
) -> ImportReport:
    """Upsert every row of a CSV text; returns the report (nothing is kept with `dry_run`)."""
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    mapping = column_map(reader.fieldnames or [], overrides)
    who = Principal("csv-import", "service", scope="crm")
    report = ImportReport()
    for row in reader:
        line = reader.line_num
        try:
            external_id, body = _body(row, mapping)
            if not external_id:
                raise InvalidInput("the row has no external id")
            change = parse_customer(body, region, creating=False)
            found, created = await upsert_external(db, who, source, external_id, change, {}, dry_run=dry_run)
        except (KirjuriError, StorageError) as exc:
            where = getattr(exc, "field", None)
            report.errors.append((line, f"{where}: {exc}" if where else str(exc)))
            continue
        if created:
            report.created += 1
        elif found["changed"] or found["linked_interactions"]:
            report.updated += 1
        else:
            report.unchanged += 1
    return report
