"""provisioned_clusters: EKS clusters in a network of a connection's account, provisioned by our stacks

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 02:20:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sailplane.kit.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provisioned_clusters',
    sa.Column('id', sa.String(length=20), nullable=False),
    sa.Column('organization_id', sa.String(length=20), nullable=False),
    sa.Column('connection_id', sa.String(length=20), nullable=False),
    sa.Column('network_id', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('region', sa.String(length=40), nullable=False),
    sa.Column('kubernetes_version', sa.String(length=10), nullable=False),
    sa.Column('node_group', sa.JSON(), nullable=False),
    sa.Column('public_access_cidrs', sa.JSON(), nullable=False),
    sa.Column('cluster_name', sa.String(length=100), nullable=True),
    sa.Column('cluster_arn', sa.String(length=2048), nullable=True),
    sa.Column('project_name', sa.String(length=128), nullable=True),
    sa.Column('stack_name', sa.String(length=128), nullable=True),
    sa.Column('stack_arn', sa.String(length=2048), nullable=True),
    sa.Column('iac_outputs', sa.JSON(), nullable=False),
    sa.Column('job_runner_role_arn', sa.String(length=2048), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('status_message', sa.String(length=2000), nullable=True),
    sa.Column('last_health_status', sa.String(length=20), nullable=True),
    sa.Column('last_health_message', sa.String(length=2000), nullable=True),
    sa.Column('last_health_check_at', sailplane.kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', sailplane.kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=20), nullable=True),
    sa.Column('updated_at', sailplane.kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_provisioned_clusters_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_provisioned_clusters_network_id_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_provisioned_clusters_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provisioned_clusters')),
    sa.UniqueConstraint('connection_id', 'name', name=op.f('uq_provisioned_clusters_connection_id_name'))
    )
    with op.batch_alter_table('provisioned_clusters', schema=None) as batch_op:
        batch_op.create_index('ix_provisioned_clusters_connection', ['connection_id', 'id'], unique=False)
        batch_op.create_index('ix_provisioned_clusters_network', ['network_id'], unique=False)
        batch_op.create_index('ix_provisioned_clusters_org_id', ['organization_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('provisioned_clusters', schema=None) as batch_op:
        batch_op.drop_index('ix_provisioned_clusters_org_id')
        batch_op.drop_index('ix_provisioned_clusters_network')
        batch_op.drop_index('ix_provisioned_clusters_connection')

    op.drop_table('provisioned_clusters')
