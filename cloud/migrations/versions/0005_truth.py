"""readings with their time: when the battery figure and the heart rate were taken

- ``devices.batt_at``: when the cloud received the watch's latest battery reading
  (from an alarm, a position report or a status), so the console can say "25% at
  14:02" and one figure serves the case and the device views alike.
- ``alert_cases.heart_rate_at``: when the case's heart rate was received (the
  alarm's, or a later reading during the case).

Revision ID: 0005_truth
Revises: 0004
Create Date: 2026-12-05 01:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005_truth'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as t:
        t.add_column(sa.Column("batt_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("alert_cases") as t:
        t.add_column(sa.Column("heart_rate_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_cases") as t:
        t.drop_column("heart_rate_at")
    with op.batch_alter_table("devices") as t:
        t.drop_column("batt_at")
