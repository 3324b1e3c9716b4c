"""networks: VPCs of a connection's account, provisioned by our CloudFormation stacks or adopted

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 01:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sailplane.kit.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('networks',
    sa.Column('id', sa.String(length=20), nullable=False),
    sa.Column('organization_id', sa.String(length=20), nullable=False),
    sa.Column('connection_id', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('region', sa.String(length=40), nullable=False),
    sa.Column('cidr', sa.String(length=43), nullable=False),
    sa.Column('provider_network_id', sa.String(length=64), nullable=True),
    sa.Column('adopted', sa.Boolean(), nullable=False),
    sa.Column('project_name', sa.String(length=128), nullable=True),
    sa.Column('stack_name', sa.String(length=128), nullable=True),
    sa.Column('stack_arn', sa.String(length=2048), nullable=True),
    sa.Column('iac_outputs', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('status_message', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sailplane.kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=20), nullable=True),
    sa.Column('updated_at', sailplane.kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_networks_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_networks_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_networks')),
    sa.UniqueConstraint('connection_id', 'name', name=op.f('uq_networks_connection_id_name'))
    )
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.create_index('ix_networks_connection', ['connection_id', 'id'], unique=False)
        batch_op.create_index('ix_networks_org_id', ['organization_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_index('ix_networks_org_id')
        batch_op.drop_index('ix_networks_connection')

    op.drop_table('networks')
