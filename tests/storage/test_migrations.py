"""The Alembic migrations build exactly the schema the models describe: a column or index
added to a model without a migration (or the other way round) fails here, not on a
customer's database."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from storage.engine import Database
from storage.models import Base


async def test_migrations_match_the_models(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    await db.open()
    await db.close()
    engine = create_engine(f"sqlite:///{tmp_path / 'k.db'}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    # the full-text index is an FTS5 virtual table made by raw SQL, unknown to the models
    assert [d for d in diff if "interaction_fts" not in str(d)] == []
