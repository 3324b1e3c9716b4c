"""sso_login_states: a native client's loopback redirect (RFC 8252), its PKCE challenge and state, and the handoff

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 08:40:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sailplane.kit.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sso_login_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_redirect_uri', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('client_code_challenge', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('client_state', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('handoff_code_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('handoff_user_id', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('handoff_used_at', sailplane.kit.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_sso_login_states_handoff_code_hash'), ['handoff_code_hash'])
        batch_op.create_foreign_key(batch_op.f('fk_sso_login_states_handoff_user_id_users'), 'users',
                                    ['handoff_user_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('sso_login_states', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sso_login_states_handoff_user_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_sso_login_states_handoff_code_hash'), type_='unique')
        batch_op.drop_column('handoff_used_at')
        batch_op.drop_column('handoff_user_id')
        batch_op.drop_column('handoff_code_hash')
        batch_op.drop_column('client_state')
        batch_op.drop_column('client_code_challenge')
        batch_op.drop_column('client_redirect_uri')
