"""Kirjuri's core: ingest, linking, access, API and CLI. Depends on `storage`, never on `connectors`."""
