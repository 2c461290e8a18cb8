"""alarm integrity: content-scoped alert de-duplication, 64-bit device times,
case flags, and the dead-letter table

- ``alerts.digest``: a retransmission is the same (device, mid) with the same
  content; the unique key becomes (device_id, mid, digest). Existing rows get the
  digest of their stored payload, computed exactly as the ingest computes it
  (``cloud/domain/dedupe.py``: SHA-256 of the canonical JSON), so a redelivery of
  an alert stored before this migration is still recognised.
- ``device_ts``/``loc_ts`` become BIGINT: a watch's time may be past 2038.
- ``alert_cases.flags``: what the watch got wrong, for the operator.
- ``dead_letters``: messages quarantined instead of being retried for ever.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 14:30:00
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _digest(payload) -> str:
    doc = payload if isinstance(payload, dict) else json.loads(payload)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest', sa.String(length=64), nullable=True))
        batch_op.alter_column('device_ts', type_=sa.BigInteger(), existing_type=sa.Integer(),
                              existing_nullable=True)

    conn = op.get_bind()
    alerts = sa.table('alerts', sa.column('id', sa.Integer), sa.column('payload', sa.JSON),
                      sa.column('digest', sa.String))
    rows = conn.execute(sa.select(alerts.c.id, alerts.c.payload)).all()
    for row in rows:
        conn.execute(alerts.update().where(alerts.c.id == row.id).values(digest=_digest(row.payload)))

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.alter_column('digest', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_constraint('uq_alerts_device_mid', type_='unique')
        batch_op.create_unique_constraint('uq_alerts_device_mid_digest', ['device_id', 'mid', 'digest'])

    with op.batch_alter_table('location_points', schema=None) as batch_op:
        batch_op.alter_column('device_ts', type_=sa.BigInteger(), existing_type=sa.Integer(),
                              existing_nullable=True)

    with op.batch_alter_table('alert_cases', schema=None) as batch_op:
        batch_op.alter_column('loc_ts', type_=sa.BigInteger(), existing_type=sa.Integer(),
                              existing_nullable=True)
        batch_op.add_column(sa.Column('flags', sa.JSON(), nullable=True))

    op.create_table('dead_letters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('last_at', sa.DateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('topic', sa.String(length=256), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index('ix_dead_letters_tenant', ['tenant_id', 'id'], unique=False)
        batch_op.create_index('ix_dead_letters_device_digest', ['device_id', 'digest'], unique=False)


def downgrade() -> None:
    op.drop_table('dead_letters')
    with op.batch_alter_table('alert_cases', schema=None) as batch_op:
        batch_op.drop_column('flags')
        batch_op.alter_column('loc_ts', type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=True)
    with op.batch_alter_table('location_points', schema=None) as batch_op:
        batch_op.alter_column('device_ts', type_=sa.Integer(), existing_type=sa.BigInteger(),
                              existing_nullable=True)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_alerts_device_mid_digest', type_='unique')
        batch_op.create_unique_constraint('uq_alerts_device_mid', ['device_id', 'mid'])
        batch_op.drop_column('digest')
        batch_op.alter_column('device_ts', type_=sa.Integer(), existing_type=sa.BigInteger(),
                              existing_nullable=True)
