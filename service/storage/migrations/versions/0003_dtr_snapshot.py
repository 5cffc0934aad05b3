"""DTR chart snapshots (table dtr_snapshot), sealed like SMART sessions.

Revision ID: 0003
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dtr_snapshot",
        sa.Column("id_hash", sa.Text, primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_index("dtr_snapshot_expiry", "dtr_snapshot", ["expires_at"])


def downgrade():
    op.drop_index("dtr_snapshot_expiry", table_name="dtr_snapshot")
    op.drop_table("dtr_snapshot")
