"""notebook kernel handover: the kernel's generation, its editor and a pending handover

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 01:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notebooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kernel_generation', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('kernel_editor', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('kernel_handover_to', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notebooks', schema=None) as batch_op:
        batch_op.drop_column('kernel_handover_to')
        batch_op.drop_column('kernel_editor')
        batch_op.drop_column('kernel_generation')
