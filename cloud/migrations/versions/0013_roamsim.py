"""the vSIM pool as stock: one row a profile (ICCID), allocated to one watch

- ``vsim_profiles``: ``tenant_id`` (a tenant's stock; null: the platform's shared
  list, sent as before), ``iccid``, ``expires_at``, ``device_id`` (unique: a
  watch holds at most one), ``allocated_at``, ``away_since`` (the holder reports
  another country since then).
- ``devices.home_country``: where the watch's own SIM is at home.
- ``vsim_thresholds``: "running low" per tenant (``country`` "*") or country.
- ``vsim_low_warnings``: a low stock warned once, until the stock recovers.

Revision ID: 0013_roamsim
Revises: 0012_welfare
Create Date: 2026-12-05 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013_roamsim'
down_revision = '0012_welfare'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vsim_profiles', schema=None) as b:
        b.add_column(sa.Column('tenant_id', sa.Integer(), nullable=True))
        b.add_column(sa.Column('iccid', sa.String(length=22), nullable=True))
        b.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        b.add_column(sa.Column('device_id', sa.String(length=64), nullable=True))
        b.add_column(sa.Column('allocated_at', sa.DateTime(), nullable=True))
        b.add_column(sa.Column('away_since', sa.DateTime(), nullable=True))
        b.create_foreign_key('fk_vsim_profiles_tenant_id_tenants', 'tenants', ['tenant_id'], ['id'])
        b.create_foreign_key('fk_vsim_profiles_device_id_devices', 'devices', ['device_id'], ['id'])
        b.create_index('ix_vsim_profiles_tenant_id', ['tenant_id'], unique=False)
        b.create_index('ix_vsim_profiles_iccid', ['iccid'], unique=True)
        b.create_index('ix_vsim_profiles_device_id', ['device_id'], unique=True)
    with op.batch_alter_table('devices', schema=None) as b:
        b.add_column(sa.Column('home_country', sa.String(length=2), nullable=True))
    op.create_table(
        'vsim_thresholds',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('tenant_id', sa.Integer(), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('low_at', sa.Integer(), nullable=False),
        sa.UniqueConstraint('tenant_id', 'country', name='uq_vsim_thresholds_tenant_country'),
    )
    op.create_table(
        'vsim_low_warnings',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('tenant_id', sa.Integer(), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('free', sa.Integer(), nullable=False),
        sa.Column('low_at', sa.Integer(), nullable=False),
        sa.Column('raised_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('tenant_id', 'country', name='uq_vsim_low_warnings_tenant_country'),
    )


def downgrade() -> None:
    op.drop_table('vsim_low_warnings')
    op.drop_table('vsim_thresholds')
    with op.batch_alter_table('devices', schema=None) as b:
        b.drop_column('home_country')
    with op.batch_alter_table('vsim_profiles', schema=None) as b:
        b.drop_index('ix_vsim_profiles_device_id')
        b.drop_index('ix_vsim_profiles_iccid')
        b.drop_index('ix_vsim_profiles_tenant_id')
        b.drop_constraint('fk_vsim_profiles_device_id_devices', type_='foreignkey')
        b.drop_constraint('fk_vsim_profiles_tenant_id_tenants', type_='foreignkey')
        for c in ('away_since', 'allocated_at', 'device_id', 'expires_at', 'iccid', 'tenant_id'):
            b.drop_column(c)
