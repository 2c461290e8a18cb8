"""medication reminders: the plans the cloud judges doses by, and the doses

- ``reminder_plans``: a device's reminders from its latest config, and when to look next.
- ``reminder_doses``: one row per dose (confirmed or missed), unique per device, reminder, local day.
- ``tenants.missed_dose_to``: who hears of a missed dose, "family" or "centre".

Revision ID: 0011_reminders
Revises: 0010_sia
Create Date: 2026-12-05 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011_reminders'
down_revision = '0010_sia'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenants') as batch:
        batch.add_column(sa.Column('missed_dose_to', sa.String(length=8), nullable=False, server_default='family'))
    op.create_table(
        'reminder_plans',
        sa.Column('device_id', sa.String(length=64), sa.ForeignKey('devices.id'), primary_key=True),
        sa.Column('tenant_id', sa.Integer(), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('reminders', sa.JSON(), nullable=False),
        sa.Column('since', sa.DateTime(), nullable=False),
        sa.Column('next_check_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_reminder_plans_tenant_id', 'reminder_plans', ['tenant_id'])
    op.create_index('ix_reminder_plans_next_check_at', 'reminder_plans', ['next_check_at'])
    op.create_table(
        'reminder_doses',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('tenant_id', sa.Integer(), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('device_id', sa.String(length=64), sa.ForeignKey('devices.id'), nullable=False),
        sa.Column('wearer_id', sa.Integer(), sa.ForeignKey('wearers.id'), nullable=True),
        sa.Column('reminder_id', sa.String(length=16), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=9), nullable=False),
        sa.Column('source', sa.String(length=5), nullable=False),
        sa.Column('text', sa.String(length=160), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(), nullable=True),
        sa.Column('mid', sa.String(length=64), nullable=True),
        sa.Column('late_report', sa.Boolean(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
        sa.Column('notified_at', sa.DateTime(), nullable=True),
        sa.Column('notified_to', sa.String(length=8), nullable=True),
        sa.Column('case_id', sa.Integer(), sa.ForeignKey('alert_cases.id'), nullable=True),
        sa.UniqueConstraint('device_id', 'reminder_id', 'day', name='uq_reminder_dose'),
    )
    op.create_index('ix_reminder_doses_wearer_day', 'reminder_doses', ['wearer_id', 'day'])
    op.create_index('ix_reminder_doses_pending', 'reminder_doses', ['status', 'notified_at'])


def downgrade() -> None:
    op.drop_table('reminder_doses')
    op.drop_table('reminder_plans')
    with op.batch_alter_table('tenants') as batch:
        batch.drop_column('missed_dose_to')
