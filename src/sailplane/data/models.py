"""Catalogs (pointers to table metadata) and saved queries, each shared with one or more teams."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class Catalog(Timestamps, Base):
    """`provider_config` holds the non-secret settings; secret ones (tokens) live only in
    `secret_config`, an encrypted JSON object (kit.crypto.Encryptor), never returned."""

    __tablename__ = "catalogs"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    provider: Mapped[str] = mapped_column(String(32))
    provider_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_config: Mapped[str | None] = mapped_column(Text, default=None)
    secret_fields: Mapped[list[str]] = mapped_column(JSON, default=list)  # names of the secrets set, not values
    status: Mapped[str] = mapped_column(String(32), default="active")


class CatalogTeam(Timestamps, Base):
    __tablename__ = "catalog_teams"
    __table_args__ = (Index("ix_catalog_teams_team_id", "team_id"),)

    catalog_id: Mapped[str] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))


class Query(Timestamps, Base):
    """Saved SQL. Deleting its catalog leaves the query without one (catalog_id NULL)."""

    __tablename__ = "queries"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        Index("ix_queries_catalog_id", "catalog_id"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    sql: Mapped[str] = mapped_column(Text)
    catalog_id: Mapped[str | None] = mapped_column(ForeignKey("catalogs.id", ondelete="SET NULL"), default=None)
    schema_name: Mapped[str | None] = mapped_column(String(255), default=None)


class QueryTeam(Timestamps, Base):
    __tablename__ = "query_teams"
    __table_args__ = (Index("ix_query_teams_team_id", "team_id"),)

    query_id: Mapped[str] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
