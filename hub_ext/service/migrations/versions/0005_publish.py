"""Publishing golden images: published versions, the pin history of each course, publish runs
and the one-publish-per-course lock.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade():
    op.create_table(
        "image_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("course", sa.String(40), nullable=False, index=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("reference", sa.String(400), nullable=False),
        sa.Column("tag", sa.String(400), nullable=False, server_default=""),
        sa.Column("image_id", sa.String(80), nullable=False, index=True),
        sa.Column("commit", sa.String(64), nullable=False, server_default=""),
        sa.Column("ref", sa.String(200), nullable=False, server_default=""),
        sa.Column("requirements_digest", sa.String(80), nullable=False, server_default=""),
        sa.Column("labels", sa.Text, nullable=False, server_default="{}"),
        sa.Column("published_by", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("publish_id", sa.Integer, nullable=True),
        sa.UniqueConstraint("course", "number"),
    )
    op.create_table(
        "pin_revisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("course", sa.String(40), nullable=False, index=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("image_versions.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("course", "number"),
    )
    op.create_table(
        "publish_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("course", sa.String(40), nullable=False, index=True),
        sa.Column("ref", sa.String(200), nullable=False, server_default=""),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="running"),
        sa.Column("step", sa.String(16), nullable=False, server_default=""),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("log_path", sa.String(500), nullable=False, server_default=""),
        sa.Column("holder", sa.String(255), nullable=False, server_default=""),
        sa.Column("version_id", sa.Integer, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "publish_locks",
        sa.Column("course", sa.String(40), primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    for table in ("publish_locks", "publish_runs", "pin_revisions", "image_versions"):
        op.drop_table(table)
