"""the watch gateway: how each device talks to the cloud

- ``devices.protocol``: "openpers" (MQTT, the default for every existing device),
  "setracker" or "iw" (off-the-shelf watches through the TCP gateway, docs/gateway.md).

Revision ID: 0009_gateway
Revises: 0008_shift
Create Date: 2026-12-05 04:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009_gateway'
down_revision = '0008_shift'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('protocol', sa.String(length=16), nullable=False,
                                      server_default='openpers'))


def downgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('protocol')
