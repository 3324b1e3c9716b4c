"""Wire shapes of networks (the `clusters` seed's `networks[]` record) and of their requests."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from sailplane.infra.connections.schemas import Region
from sailplane.infra.operations.schemas import OperationView
from sailplane.kit.schemas import ApiModel, Name, NotNull, RequestModel, Timestamp

VPC_ID = r"^vpc-[0-9a-f]{8,17}$"
Cidr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=9, max_length=18)]
VpcId = Annotated[str, StringConstraints(pattern=VPC_ID)]


class IacState(ApiModel):
    project_name: str | None = None
    stack_name: str | None = None


class NetworkConfig(ApiModel):
    cidr: str | None = None


class NetworkView(ApiModel):
    id: str
    connection_id: str
    name: str
    region: str
    provider_network_id: str | None = Field(default=None, description="The VPC's ID, once there is one.")
    config: NetworkConfig
    iac_state: IacState | None = None
    iac_outputs: dict[str, str] = Field(default_factory=dict, description="The stack's outputs (VpcId, subnet IDs, "
                                                                          "security group), or the adopted VPC's.")
    status: str = Field(description="pending, provisioning, active, destroying, destroyed or failed.")
    status_message: str | None = None
    created_at: Timestamp
    created_by: str | None = None
    updated_at: Timestamp
    updated_by: str | None = None


class NetworkConfigInput(RequestModel):
    cidr: Cidr = Field(description="The VPC's IPv4 range: private (RFC 1918), /16 to /24, e.g. 10.0.0.0/16.")


class CreateNetworkRequest(RequestModel):
    name: Name
    region: Annotated[Region | None, NotNull] = Field(default=None, description="Default: the connection's region.")
    config: Annotated[NetworkConfigInput | None, NotNull] = Field(
        default=None, description="Required unless providerNetworkId names a VPC to adopt (its range is read).")
    provider_network_id: Annotated[VpcId | None, NotNull] = Field(
        default=None, description="Adopt this existing VPC of the account instead of provisioning one.")


class UpdateNetworkRequest(RequestModel):
    name: Annotated[Name | None, NotNull] = None
    config: Annotated[NetworkConfigInput | None, NotNull] = Field(
        default=None, description="The range may change only while the network is pending (not provisioned).")


class NetworkIncluded(ApiModel):
    operations: list[OperationView]


class NetworkList(ApiModel):
    total: int
    items: list[NetworkView]
    included: NetworkIncluded
    marker: str | None = None


class NetworkDetail(ApiModel):
    item: NetworkView
    included: NetworkIncluded
