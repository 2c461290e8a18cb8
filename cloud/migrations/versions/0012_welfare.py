"""welfare: check-in, inactivity, not-worn settings and state

- ``wearers.welfare``: the wearer's settings (check-in time and window, night
  hours, inactivity and not-worn limits).
- ``devices.welfare_state``: what the watch reported (last movement, worn or
  not), the last check-in answer, the alarms raised and the low-battery latch.

Revision ID: 0012_welfare
Revises: 0011_reminders
Create Date: 2026-12-05 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012_welfare'
down_revision = '0011_reminders'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('wearers', sa.Column('welfare', sa.JSON(), nullable=True))
    op.add_column('devices', sa.Column('welfare_state', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('devices', 'welfare_state')
    op.drop_column('wearers', 'welfare')
