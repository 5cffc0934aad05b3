"""The audit row names each coverage-assertion-id by its SHA-256, never the id itself.

The id is the key to the DTR chart sealed under it (docs/dtr.md): an audit table holding it would let the
database alone — a backup, a copy — open every chart kept for DTR. The hash still traces an id a payer or
an EHR presents to the call that issued it (docs/operations.md, "The audit log"). Rows written before
this revision are converted in place.

Revision ID: 0004
Revises: 0003
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _sha256_list(ids_json: str) -> str:
    try:
        ids = json.loads(ids_json)
    except (TypeError, ValueError):
        ids = []
    return json.dumps([hashlib.sha256(str(i).encode("utf-8")).hexdigest() for i in ids if isinstance(i, str)])


def upgrade():
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("coverage_assertion_sha256", sa.Text, nullable=False, server_default="[]"))
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        # Pages freed below are zeroed, not left holding the ids (PostgreSQL: docs/operations.md).
        connection.exec_driver_sql("PRAGMA secure_delete = ON")
    rows = connection.execute(sa.text("SELECT id, coverage_assertion_ids FROM audit "
                                      "WHERE coverage_assertion_ids <> '[]'")).fetchall()
    for row_id, ids_json in rows:
        connection.execute(sa.text("UPDATE audit SET coverage_assertion_sha256 = :hashes WHERE id = :id"),
                           {"hashes": _sha256_list(ids_json), "id": row_id})
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("coverage_assertion_ids")


def downgrade():
    # The ids cannot be recovered from their hashes: the old column comes back holding the hashes.
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("coverage_assertion_ids", sa.Text, nullable=False, server_default="[]"))
    op.execute("UPDATE audit SET coverage_assertion_ids = coverage_assertion_sha256")
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("coverage_assertion_sha256")
