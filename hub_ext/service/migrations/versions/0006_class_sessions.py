"""Scheduled class sessions and what each did per student (pre-started, opened, stopped
unopened, failed).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade():
    op.create_table(
        "class_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("course", sa.String(40), nullable=False, index=True),
        sa.Column("template", sa.String(40), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("lead_minutes", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_by", sa.String(255), nullable=False, server_default=""),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "class_session_students",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Integer, sa.ForeignKey("class_sessions.id"), nullable=False, index=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("server_started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("session_id", "username"),
    )


def downgrade():
    op.drop_table("class_session_students")
    op.drop_table("class_sessions")
