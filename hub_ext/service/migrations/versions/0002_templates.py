"""Environment templates created and edited at runtime, with every revision kept.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.create_table(
        "templates",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("course", sa.String(40), nullable=False),
        sa.Column("course_title", sa.String(100), nullable=False, server_default=""),
        sa.Column("current", sa.Integer, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "template_revisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("template_id", sa.String(40), sa.ForeignKey("templates.id"), nullable=False, index=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("diff", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("template_id", "number"),
    )


def downgrade():
    op.drop_table("template_revisions")
    op.drop_table("templates")
