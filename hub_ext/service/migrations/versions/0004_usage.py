"""GPU time: usage sessions (the ledger), extra hours granted, notices to students (cull and
quota warnings), and one row per server start (for metrics and quota refusals).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade():
    op.create_table(
        "usage_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("container_id", sa.String(80), nullable=False, unique=True),
        sa.Column("username", sa.String(255), nullable=False, index=True),
        sa.Column("course", sa.String(40), nullable=False, index=True),
        sa.Column("template", sa.String(40), nullable=False),
        sa.Column("gpus", sa.String(255), nullable=False, server_default=""),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True, index=True),
        sa.Column("end_reason", sa.String(16), nullable=False, server_default=""),
    )
    op.create_table(
        "usage_grants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(255), nullable=False, index=True),
        sa.Column("course", sa.String(40), nullable=False, index=True),
        sa.Column("hours", sa.Float, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(255), nullable=False, index=True),
        sa.Column("server", sa.String(255), nullable=False, server_default=""),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("params", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("username", "server", "kind"),
    )
    op.create_table(
        "start_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("server", sa.String(255), nullable=False, server_default=""),
        sa.Column("course", sa.String(40), nullable=False, server_default=""),
        sa.Column("template", sa.String(40), nullable=False, server_default=""),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False, server_default=""),
        sa.Column("reason", sa.String(64), nullable=False, server_default=""),
    )


def downgrade():
    for table in ("start_events", "notices", "usage_grants", "usage_sessions"):
        op.drop_table(table)
