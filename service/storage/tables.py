"""The service's tables, declared once (SQLAlchemy Core). Migrations create and change them.

Times the service compares are epoch seconds (`expires_at`); times people read are ISO-8601 UTC
strings with milliseconds (`received_at`, `issued_at`), which sort as text in either database.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, LargeBinary, MetaData, Table, Text

metadata = MetaData()

# An INTEGER PRIMARY KEY is SQLite's rowid; BIGINT is Postgres's identity column.
_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")

meta = Table(
    "meta", metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

feedback = Table(
    "feedback", metadata,
    Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("received_at", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("card_uuid", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("accepted_suggestions", Text, nullable=False),
    Column("override_code", Text),
    Column("override_display", Text),
    Column("user_comment", Text),
    Column("outcome_timestamp", Text, nullable=False),
    Index("feedback_card", "card_uuid"),
)

audit = Table(
    "audit", metadata,
    Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("received_at", Text, nullable=False),
    Column("hook_instance", Text),
    Column("service", Text, nullable=False),
    Column("patient_hash", Text),
    Column("policy", Text),
    Column("determination", Text),
    # The SHA-256 of each coverage-assertion-id, never the id: it is the key to a sealed DTR chart (0004).
    Column("coverage_assertion_sha256", Text, nullable=False, server_default="[]"),
    Column("card_uuids", Text, nullable=False),
    Column("card_indicators", Text, nullable=False),
    Column("timings_ms", Text, nullable=False),
    Column("counts", Text, nullable=False),
    # One entry per decision, comma-separated like `policy` (migration 0002): the version applied, or
    # "none in force"; the policy file's sha256.
    Column("policy_version", Text),
    Column("policy_digest", Text),
    Index("audit_received_at", "received_at"),
)

# The cards this service issued: the report's denominator, and what feedback may refer to.
card_issued = Table(
    "card_issued", metadata,
    Column("card_uuid", Text, primary_key=True),
    Column("card_type", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("issued_at", Text, nullable=False),
)

cds_client_jti = Table(
    "cds_client_jti", metadata,
    Column("iss", Text, primary_key=True),
    Column("jti", Text, primary_key=True),
    Column("expires_at", Float, nullable=False),
    Index("cds_client_jti_issuer_expiry", "iss", "expires_at"),
    sqlite_with_rowid=False,
)


def _sealed(name: str) -> Table:
    """A table of sealed rows (service/storage/sealed.py): a hash names each row, its payload is encrypted."""
    return Table(
        name, metadata,
        Column("id_hash", Text, primary_key=True),
        Column("expires_at", Float, nullable=False),
        Column("nonce", LargeBinary, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Index(f"{name}_expiry", "expires_at"),
    )


smart_session = _sealed("smart_session")

# The chart a CRD answer was decided on, for the DTR questionnaire that follows it (service/dtr/snapshots.py):
# sealed by the coverage-assertion-id like a SMART session by its cookie.
dtr_snapshot = _sealed("dtr_snapshot")
