"""SQLite's substring index for the Pending search: FTS5 tables with the trigram tokenizer,
kept by triggers (migration 0006). PostgreSQL uses its pg_trgm indexes instead (0005).

The tables are the database's own business, not models: Alembic's comparison skips them.
"""
import sqlalchemy as sa

from portal.database import db

# The searchable text of a row: its columns joined by line breaks. Migration 0006 indexed
# the first three columns of a QR code; 0009 added its Name.
QR_CODE_TEXT_0006 = ("{t}.public_id || char(10) || coalesce({t}.wifi_ssid, '') || char(10) || "
                     "coalesce({t}.alternative_email, '')")
QR_CODE_TEXT_0009 = QR_CODE_TEXT_0006 + " || char(10) || coalesce({t}.name, '')"
QR_CODE_TEXT = QR_CODE_TEXT_0009
USER_TEXT = ("{t}.username || char(10) || coalesce({t}.display_name, '') || char(10) || "
             "coalesce({t}.email, '')")
# (FTS5 table, table it indexes, text expression)
TABLES = (("qr_code_search", "qr_codes", QR_CODE_TEXT),
          ("portal_user_search", "portal_users", USER_TEXT))
MIN_LENGTH = 3  # a trigram index answers substrings of three characters or more
FEW = 500       # more matches than this: scanning in list order finds a page sooner

qr_code_search = sa.table("qr_code_search", sa.column("rowid"))
portal_user_search = sa.table("portal_user_search", sa.column("rowid"))


def is_search_table(name: str) -> bool:
    """The FTS5 tables and their shadow tables (qr_code_search_data, …)."""
    return any(name == table or name.startswith(table + "_") for table, _, _ in TABLES)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """For Alembic: leave the FTS5 tables out of the comparison with the models."""
    return not (type_ == "table" and reflected and compare_to is None and is_search_table(name))


def phrase(query: str) -> str:
    """An FTS5 query for the text as one phrase: with trigrams, "anywhere in the text".
    Quoted, FTS5's operators (AND, NEAR(, *, ^, -) and quotes are only characters."""
    return '"' + query.replace('"', '""') + '"'


def rowids(table, query: str) -> sa.Select:
    """The rows whose text contains the query (without NUL: FTS5 reads a query only up to
    it, "unterminated string")."""
    return sa.select(table.c.rowid).where(
        sa.text(f"{table.name} MATCH :phrase").bindparams(phrase=phrase(query)))


def few_matches(table, query: str) -> list[int] | None:
    """The ids of the rows whose text contains the query, or None when there are more than
    FEW of them (one index look-up either way)."""
    ids = db.session.scalars(rowids(table, query).limit(FEW + 1)).all()
    return None if len(ids) > FEW else list(ids)


def create_statements(qr_code_text: str = QR_CODE_TEXT) -> list[str]:
    """DDL of the tables, their triggers and the backfill of existing rows (a migration
    passes the QR codes' text as it was at its revision)."""
    statements = []
    for fts, table, text in TABLES:
        text = qr_code_text if table == "qr_codes" else text
        new = text.format(t="new")
        statements += [
            f"CREATE VIRTUAL TABLE {fts} USING fts5(text, tokenize='trigram')",
            f"INSERT INTO {fts}(rowid, text) SELECT id, {text.format(t=table)} FROM {table}",
            f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {fts}(rowid, text) VALUES (new.id, {new}); END",
            f"CREATE TRIGGER {fts}_update AFTER UPDATE ON {table} BEGIN "
            f"DELETE FROM {fts} WHERE rowid = old.id; "
            f"INSERT INTO {fts}(rowid, text) VALUES (new.id, {new}); END",
            f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
            f"DELETE FROM {fts} WHERE rowid = old.id; END",
        ]
    return statements


def drop_statements() -> list[str]:
    statements = []
    for fts, _, _ in TABLES:
        statements += [f"DROP TRIGGER IF EXISTS {fts}_{event}"
                       for event in ("insert", "update", "delete")]
        statements.append(f"DROP TABLE IF EXISTS {fts}")
    return statements
