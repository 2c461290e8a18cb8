"""call centre names are unique within what a tenant sees, not across the platform

A tenant creating a centre named like another tenant's private centre was refused
("exists"), which told it that the other centre exists. The global unique key on
``call_centres.name`` goes; the domain refuses a name only when a centre the tenant
owns or contracts has it (cloud/domain/admin/centres.py). The name keeps an index:
the platform's CLI looks centres up by name.

Revision ID: 0006_perimeter
Revises: 0005_truth
Create Date: 2026-12-05 01:30:00
"""
from alembic import op

revision = '0006_perimeter'
down_revision = '0005_truth'
branch_labels = None
depends_on = None

# SQLite's unique key has no name; the convention names it for the batch copy.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name() -> str:
    return "call_centres_name_key" if op.get_bind().dialect.name == "postgresql" else "uq_call_centres_name"


def upgrade() -> None:
    with op.batch_alter_table("call_centres", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(_unique_name(), type_="unique")
        batch_op.create_index(batch_op.f("ix_call_centres_name"), ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_centres", naming_convention=NAMING) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_centres_name"))
        batch_op.create_unique_constraint(_unique_name(), ["name"])
