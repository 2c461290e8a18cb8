"""sessions and logins: the idle lifetime of a session, login throttles, and an
index to search a tenant's audit log by time

- ``operator_sessions.last_seen_at``: the idle lifetime counts from here (existing
  sessions count from their creation).
- ``login_throttles``: failed logins by (account, client address) and by client
  address, with the backoff each has earned (cloud/domain/throttle.py).
- ``ix_audit_log_tenant_at``: a manager's audit search is by tenant and time.

Revision ID: 0007_sessions
Revises: 0006_perimeter
Create Date: 2026-12-05 01:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007_sessions'
down_revision = '0006_perimeter'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('operator_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(), nullable=True))

    op.create_table('login_throttles',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('key', sa.String(length=200), nullable=False),
                    sa.Column('kind', sa.String(length=8), nullable=False),
                    sa.Column('username', sa.String(length=64), nullable=True),
                    sa.Column('client', sa.String(length=64), nullable=False),
                    sa.Column('tenant_id', sa.Integer(), nullable=True),
                    sa.Column('failures', sa.Integer(), nullable=False),
                    sa.Column('refused', sa.Integer(), nullable=False),
                    sa.Column('last_failure_at', sa.DateTime(), nullable=True),
                    sa.Column('blocked_until', sa.DateTime(), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('key'))
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_throttles_client'), ['client'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_throttles_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_tenant_at', ['tenant_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_tenant_at')
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_throttles_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_login_throttles_client'))
    op.drop_table('login_throttles')
    with op.batch_alter_table('operator_sessions', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
