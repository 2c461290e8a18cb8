"""the wearer's file: what an operator reads out under stress

- ``wearers``: languages spoken, the GP, allergies, medication, mobility, the
  key-safe code (shown only inside an open case its operator holds, on an explicit
  action, each view audited) and who has keys.
- ``devices``: the watch's own phone number and its SIM number (ICCID), for the
  operator who must call the watch, and for the operator's carrier.

Revision ID: 0008_shift
Revises: 0007_sessions
Create Date: 2026-12-05 01:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008_shift'
down_revision = '0007_sessions'
branch_labels = None
depends_on = None

WEARER_COLUMNS = (
    ('languages', sa.String(length=200)),
    ('gp', sa.String(length=400)),
    ('allergies', sa.Text()),
    ('medication', sa.Text()),
    ('mobility', sa.String(length=400)),
    ('key_safe_code', sa.String(length=64)),
    ('key_holders', sa.Text()),
)
DEVICE_COLUMNS = (
    ('phone_number', sa.String(length=32)),
    ('sim_number', sa.String(length=32)),
)


def upgrade() -> None:
    with op.batch_alter_table('wearers', schema=None) as batch_op:
        for name, type_ in WEARER_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table('devices', schema=None) as batch_op:
        for name, type_ in DEVICE_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        for name, _ in reversed(DEVICE_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table('wearers', schema=None) as batch_op:
        for name, _ in reversed(WEARER_COLUMNS):
            batch_op.drop_column(name)
