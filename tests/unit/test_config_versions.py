"""Accepted configuration versions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from astreinte_ari.adapters.store.config_versions import (
    config_versions_table,
    diff_summary,
    list_config_versions,
    record_config_version,
    text_hash,
)
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.config.watcher import content_version

V1 = "timezone: Europe/Paris\nteams:\n  a: {people: [x]}\n"
V2 = "timezone: Europe/Paris\nteams:\n  a: {people: [x, y]}\n# note\n"


def test_record_is_idempotent_and_listed_in_order(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        t1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        first = record_config_version(engine, V1, "/etc/astreinte.yaml", None, now=t1)
        assert record_config_version(engine, V1, "/etc/astreinte.yaml", None) == first
        second = record_config_version(engine, V2, "/etc/astreinte.yaml", V1)
        assert second != first
        versions = list_config_versions(engine)
        assert [v.id for v in versions] == [first, second]
        assert versions[0].accepted_at == t1
        assert versions[0].content_hash == text_hash(V1) == content_version(V1.encode())
        assert versions[1].config_text == V2
        assert versions[1].diff_summary.splitlines()[0] == "+2 -1 lines"
        assert "+3: a: {people: [x, y]}" in versions[1].diff_summary
    finally:
        engine.dispose()


def test_model_matches_migration_0002(db_url: str) -> None:
    assert config_versions_table.name == "config_versions"
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn), config_versions_table.metadata
            )
    finally:
        engine.dispose()

    def mine(item: object) -> bool:
        return "config_versions" in repr(item)

    assert [d for d in diff if mine(d)] == []


def test_diff_summary_first_and_unchanged() -> None:
    assert diff_summary(None, V1) == "first recorded version (3 lines)"
    assert diff_summary(V1, V1) == "no line changed (whitespace or encoding only)"
    many = "\n".join(f"line {i}" for i in range(30))
    assert diff_summary("", many).endswith("... 18 more")
