"""The networks table: a VPC of a connection's account, ours (a CloudFormation stack) or adopted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class Network(Timestamps, Base):
    """`stack_name`/`project_name` are the `iacState` (the stack is named by the network's ID, so a resumed
    provisioning finds the one it started); `iac_outputs` the stack's outputs (or, adopted, what was read of the
    VPC). `status` is changed only through `networks.states.transition`."""

    __tablename__ = "networks"
    __table_args__ = (
        UniqueConstraint("connection_id", "name"),
        Index("ix_networks_org_id", "organization_id", "id"),
        Index("ix_networks_connection", "connection_id", "id"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # CASCADE only for an organization's deletion: deleteConnection itself refuses while it has networks.
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(40))
    cidr: Mapped[str] = mapped_column(String(43))
    provider_network_id: Mapped[str | None] = mapped_column(String(64), default=None)
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)
    project_name: Mapped[str | None] = mapped_column(String(128), default=None)
    stack_name: Mapped[str | None] = mapped_column(String(128), default=None)
    stack_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    iac_outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    status_message: Mapped[str | None] = mapped_column(String(2000), default=None)
