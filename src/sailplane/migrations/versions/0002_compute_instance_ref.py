"""compute instances: an opaque backend reference instead of a pid

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-10 12:00:00.000000

`compute_instances.ref` is the backend's own name for an instance (`InstanceHandle.ref`); the local
backend's refs are "<pid>:<start time>", and a bare "<pid>" (what existing rows get) still names a
process, so instances running across the upgrade are adopted as before.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_instances = sa.table('compute_instances', sa.column('pid', sa.Integer()), sa.column('ref', sa.String(255)))


def upgrade() -> None:
    with op.batch_alter_table('compute_instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ref', sa.String(length=255), nullable=True))
    op.execute(_instances.update().where(_instances.c.pid.is_not(None))
               .values(ref=sa.cast(_instances.c.pid, sa.String(255))))
    with op.batch_alter_table('compute_instances', schema=None) as batch_op:
        batch_op.drop_column('pid')


def downgrade() -> None:
    with op.batch_alter_table('compute_instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pid', sa.Integer(), nullable=True))
    # A ref the local backend made starts with its pid ("<pid>" or "<pid>:<start time>").
    bind = op.get_bind()
    table = sa.table('compute_instances', sa.column('id', sa.String(20)), sa.column('pid', sa.Integer()),
                     sa.column('ref', sa.String(255)))
    for iid, ref in bind.execute(sa.select(table.c.id, table.c.ref).where(table.c.ref.is_not(None))).all():
        pid = str(ref).partition(':')[0]
        if pid.isdigit():
            bind.execute(table.update().where(table.c.id == iid).values(pid=int(pid)))
    with op.batch_alter_table('compute_instances', schema=None) as batch_op:
        batch_op.drop_column('ref')
