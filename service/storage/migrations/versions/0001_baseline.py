"""Baseline: the tables the service had before it had migrations.

Databases made by earlier versions already hold some of these tables (created on first use), so
each table and index is created only when missing; the revision then adopts them.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tables():
    return {
        "meta": ([sa.Column("name", sa.Text, primary_key=True), sa.Column("value", sa.Text, nullable=False)], {}),
        "feedback": ([
            sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
            sa.Column("received_at", sa.Text, nullable=False),
            sa.Column("service", sa.Text, nullable=False),
            sa.Column("card_uuid", sa.Text, nullable=False),
            sa.Column("outcome", sa.Text, nullable=False),
            sa.Column("accepted_suggestions", sa.Text, nullable=False),
            sa.Column("override_code", sa.Text),
            sa.Column("override_display", sa.Text),
            sa.Column("user_comment", sa.Text),
            sa.Column("outcome_timestamp", sa.Text, nullable=False),
        ], {}),
        "audit": ([
            sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
            sa.Column("received_at", sa.Text, nullable=False),
            sa.Column("hook_instance", sa.Text),
            sa.Column("service", sa.Text, nullable=False),
            sa.Column("patient_hash", sa.Text),
            sa.Column("policy", sa.Text),
            sa.Column("determination", sa.Text),
            sa.Column("coverage_assertion_ids", sa.Text, nullable=False),
            sa.Column("card_uuids", sa.Text, nullable=False),
            sa.Column("card_indicators", sa.Text, nullable=False),
            sa.Column("timings_ms", sa.Text, nullable=False),
            sa.Column("counts", sa.Text, nullable=False),
        ], {}),
        "card_issued": ([
            sa.Column("card_uuid", sa.Text, primary_key=True),
            sa.Column("card_type", sa.Text, nullable=False),
            sa.Column("service", sa.Text, nullable=False),
            sa.Column("issued_at", sa.Text, nullable=False),
        ], {}),
        "cds_client_jti": ([
            sa.Column("iss", sa.Text, primary_key=True),
            sa.Column("jti", sa.Text, primary_key=True),
            sa.Column("expires_at", sa.Float, nullable=False),
        ], {"sqlite_with_rowid": False}),
        "smart_session": ([
            sa.Column("id_hash", sa.Text, primary_key=True),
            sa.Column("expires_at", sa.Float, nullable=False),
            sa.Column("nonce", sa.LargeBinary, nullable=False),
            sa.Column("payload", sa.LargeBinary, nullable=False),
        ], {}),
    }


_INDEXES = {
    "feedback_card": ("feedback", ["card_uuid"]),
    "audit_received_at": ("audit", ["received_at"]),
    "cds_client_jti_issuer_expiry": ("cds_client_jti", ["iss", "expires_at"]),
    "smart_session_expiry": ("smart_session", ["expires_at"]),
}


def upgrade():
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, (columns, options) in _tables().items():
        if name not in existing:
            op.create_table(name, *columns, **options)
    for index, (table, columns) in _INDEXES.items():
        if index not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}:
            op.create_index(index, table, columns)


def downgrade():
    for name in reversed(list(_tables())):
        op.drop_table(name)
