"""The audit row names the policy version each decision applied and the policy file's sha256.

Both are comma-separated in the order of `policy` and `determination` (one entry per decision of the
call): the version's name, or "none in force"; the file's 64-hex digest. Rows written before this
revision have neither (NULL).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("policy_version", sa.Text))
        batch.add_column(sa.Column("policy_digest", sa.Text))


def downgrade():
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("policy_digest")
        batch.drop_column("policy_version")
