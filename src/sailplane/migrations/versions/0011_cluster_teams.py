"""provisioned_cluster_teams: the teams a provisioned cluster is shared with

Existing clusters stay shared with every team of their organization (what every team could use before). The first
line stays one line: alembic logs it at each upgrade, and `sailplane serve` prints those logs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 09:00:00.000000
"""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import sailplane.kit.db


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    links = op.create_table('provisioned_cluster_teams',
    sa.Column('cluster_id', sa.String(length=20), nullable=False),
    sa.Column('team_id', sa.String(length=20), nullable=False),
    sa.Column('created_at', sailplane.kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=20), nullable=True),
    sa.Column('updated_at', sailplane.kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['cluster_id'], ['provisioned_clusters.id'], name=op.f('fk_provisioned_cluster_teams_cluster_id_provisioned_clusters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_provisioned_cluster_teams_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('cluster_id', 'team_id', name=op.f('pk_provisioned_cluster_teams'))
    )
    with op.batch_alter_table('provisioned_cluster_teams', schema=None) as batch_op:
        batch_op.create_index('ix_provisioned_cluster_teams_team_id', ['team_id'], unique=False)

    # Until now every team of the organization could use its provisioned clusters: keep it so for existing ones.
    pairs = op.get_bind().execute(sa.text(
        "SELECT c.id, t.id FROM provisioned_clusters c JOIN teams t ON t.organization_id = c.organization_id "
        "ORDER BY c.id, t.id")).all()
    if pairs:
        now = datetime.now(UTC)
        op.bulk_insert(links, [{"cluster_id": cluster_id, "team_id": team_id, "created_at": now, "updated_at": now}
                               for cluster_id, team_id in pairs])


def downgrade() -> None:
    with op.batch_alter_table('provisioned_cluster_teams', schema=None) as batch_op:
        batch_op.drop_index('ix_provisioned_cluster_teams_team_id')

    op.drop_table('provisioned_cluster_teams')
