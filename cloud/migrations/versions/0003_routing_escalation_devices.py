"""call centre coverage and hours, operator presence, case escalation bookkeeping,
device presence/config/vSIM, geofences, vSIM pool, notifications

Existing rows get server defaults for the new NOT NULL columns, so the
migration runs on a populated database (SQLite through batch mode, PostgreSQL).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 03:10:35.131657
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('vsim_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('mccmnc', sa.JSON(), nullable=False),
    sa.Column('apn', sa.String(length=100), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Float(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('vsim_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vsim_profiles_country'), ['country'], unique=False)

    op.create_table('geofences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('wearer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('shape', sa.String(length=8), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('radius_m', sa.Float(), nullable=True),
    sa.Column('points', sa.JSON(), nullable=True),
    sa.Column('schedule', sa.JSON(), nullable=True),
    sa.Column('alert_on_exit', sa.Boolean(), nullable=False),
    sa.Column('alert_on_enter', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.ForeignKeyConstraint(['wearer_id'], ['wearers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('geofences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_geofences_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_geofences_wearer_id'), ['wearer_id'], unique=False)

    op.create_table('device_configs',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
    sa.PrimaryKeyConstraint('device_id', 'version')
    )
    op.create_table('geofence_states',
    sa.Column('geofence_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('inside', sa.Boolean(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
    sa.ForeignKeyConstraint(['geofence_id'], ['geofences.id'], ),
    sa.PrimaryKeyConstraint('geofence_id', 'device_id')
    )
    op.create_table('geofence_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('geofence_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['alert_cases.id'], ),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
    sa.ForeignKeyConstraint(['geofence_id'], ['geofences.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('geofence_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_geofence_events_geofence_id'), ['geofence_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=400), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['alert_cases.id'], ),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_case_id'), ['case_id'], unique=False)

    with op.batch_alter_table('alert_cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('in_call_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('escalation_level', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('tried_centres', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('reminded_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('cascade_next', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('cascade_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('call_centres', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_tenant_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('countries', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('areas', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('languages', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('hours', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))
        batch_op.create_foreign_key('fk_call_centres_owner_tenant', 'tenants', ['owner_tenant_id'], ['id'])

    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expired_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channels', sa.JSON(), nullable=True))

    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('presence', sa.String(length=8), nullable=False, server_default='unknown'))
        batch_op.add_column(sa.Column('suspect_since', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_s', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('vsim_profile', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('last_cell', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('secret_rotated_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_url', sa.String(length=400), nullable=True))

    with op.batch_alter_table('wearers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('photo_url', sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('wearers', schema=None) as batch_op:
        batch_op.drop_column('timezone')
        batch_op.drop_column('photo_url')

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('webhook_url')

    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_column('active')
        batch_op.drop_column('last_seen_at')

    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('secret_rotated_at')
        batch_op.drop_column('last_cell')
        batch_op.drop_column('vsim_profile')
        batch_op.drop_column('country')
        batch_op.drop_column('heartbeat_s')
        batch_op.drop_column('suspect_since')
        batch_op.drop_column('presence')

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('channels')

    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.drop_column('expired_at')

    with op.batch_alter_table('call_centres', schema=None) as batch_op:
        batch_op.drop_constraint('fk_call_centres_owner_tenant', type_='foreignkey')
        batch_op.drop_column('timezone')
        batch_op.drop_column('hours')
        batch_op.drop_column('languages')
        batch_op.drop_column('areas')
        batch_op.drop_column('countries')
        batch_op.drop_column('owner_tenant_id')

    with op.batch_alter_table('alert_cases', schema=None) as batch_op:
        batch_op.drop_column('cascade_at')
        batch_op.drop_column('cascade_next')
        batch_op.drop_column('reminded_at')
        batch_op.drop_column('tried_centres')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('escalation_level')
        batch_op.drop_column('in_call_at')
        batch_op.drop_column('routed_at')

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_case_id'))

    op.drop_table('notifications')
    with op.batch_alter_table('geofence_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_geofence_events_geofence_id'))

    op.drop_table('geofence_events')
    op.drop_table('geofence_states')
    op.drop_table('device_configs')
    with op.batch_alter_table('geofences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_geofences_wearer_id'))
        batch_op.drop_index(batch_op.f('ix_geofences_tenant_id'))

    op.drop_table('geofences')
    with op.batch_alter_table('vsim_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vsim_profiles_country'))

    op.drop_table('vsim_profiles')
