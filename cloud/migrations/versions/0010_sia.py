"""forwarding alarms to alarm-receiving centres over SIA DC-09

- ``alarm_receivers``: a tenant's receivers (host, port, protocol, format, account,
  receiver and line numbers, optional AES key, backup, supervision polls).
- ``forward_outbox``: the durable outbox of events to deliver.
- ``devices.receiver_zone``: the zone a receiver knows the watch by.

Revision ID: 0010_sia
Revises: 0009_gateway
Create Date: 2026-12-05 05:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010_sia'
down_revision = '0009_gateway'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alarm_receivers',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('tenant_id', sa.Integer(), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('backup_host', sa.String(length=255), nullable=True),
        sa.Column('backup_port', sa.Integer(), nullable=True),
        sa.Column('protocol', sa.String(length=3), nullable=False),
        sa.Column('fmt', sa.String(length=8), nullable=False),
        sa.Column('account', sa.String(length=16), nullable=False),
        sa.Column('receiver_no', sa.String(length=6), nullable=True),
        sa.Column('line_no', sa.String(length=6), nullable=False),
        sa.Column('aes_key', sa.String(length=64), nullable=True),
        sa.Column('key_encoding', sa.String(length=5), nullable=False),
        sa.Column('poll_s', sa.Integer(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('next_seq', sa.Integer(), nullable=False),
        sa.Column('clock_offset_s', sa.Float(), nullable=False),
        sa.Column('last_poll_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_alarm_receivers_tenant_id', 'alarm_receivers', ['tenant_id'])
    op.create_table(
        'forward_outbox',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('receiver_id', sa.Integer(), sa.ForeignKey('alarm_receivers.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('event', sa.String(length=16), nullable=False),
        sa.Column('qualifier', sa.Integer(), nullable=False),
        sa.Column('zone', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_at', sa.DateTime(), nullable=False),
        sa.Column('last_error', sa.String(length=400), nullable=True),
        sa.Column('done_at', sa.DateTime(), nullable=True),
        sa.Column('via', sa.String(length=8), nullable=True),
        sa.Column('seq', sa.Integer(), nullable=True),
        sa.Column('alerted_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_forward_outbox_due', 'forward_outbox', ['status', 'next_at'])
    op.create_index('ix_forward_outbox_heads', 'forward_outbox', ['status', 'receiver_id', 'id'])
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('receiver_zone', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('receiver_zone')
    op.drop_index('ix_forward_outbox_heads', table_name='forward_outbox')
    op.drop_index('ix_forward_outbox_due', table_name='forward_outbox')
    op.drop_table('forward_outbox')
    op.drop_index('ix_alarm_receivers_tenant_id', table_name='alarm_receivers')
    op.drop_table('alarm_receivers')
