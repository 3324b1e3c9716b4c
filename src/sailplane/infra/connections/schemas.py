"""Wire shapes of /infra/connections (the `clusters` seed's `connections[]` record, and what create adds)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from sailplane.infra.operations.schemas import OperationView
from sailplane.kit.schemas import ApiModel, Name, NotNull, RequestModel, Timestamp

ACCOUNT_ID = r"^[0-9]{12}$"
REGION = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"
ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
STACK_ARN = r"^arn:aws[a-z-]*:cloudformation:[a-z0-9-]+:[0-9]{12}:stack/[A-Za-z][A-Za-z0-9-]{0,127}/[A-Za-z0-9-]+$"

AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID)]
Region = Annotated[str, StringConstraints(pattern=REGION, max_length=40)]
RoleArn = Annotated[str, StringConstraints(pattern=ROLE_ARN, max_length=2048)]
StackArn = Annotated[str, StringConstraints(pattern=STACK_ARN, max_length=2048)]
CONNECTION_STATUSES = ("pending", "active", "failed")


class ConnectionProviderConfig(ApiModel):
    account_id: str | None = None
    region: str | None = None
    role_arn: str | None = None
    external_id_secret_arn: str | None = None
    stack_arn: str | None = None


class ConnectionView(ApiModel):
    """A cloud account connection (the `clusters` seed). Never carries the external ID."""

    id: str
    name: str
    provider: str
    provider_config: ConnectionProviderConfig
    status: str = Field(description="pending (template not verified yet), active (verified) or failed.")
    status_message: str | None = None
    last_used_at: Timestamp | None = None
    template_synced_at: Timestamp | None = None
    template_sync_message: str | None = None
    created_at: Timestamp
    created_by: str | None = None
    updated_at: Timestamp
    updated_by: str | None = None


class TemplateInfo(ApiModel):
    """What an admin deploys: the template (its URL, or downloadConnectionTemplate) as a stack of this name with
    these parameters (the defaults of the downloaded template)."""

    template_url: str
    template_version: str
    stack_name: str
    parameters: dict[str, str] = Field(description="CloudFormation parameters: ExternalId, SailplanePrincipalArn, "
                                                   "RoleName.")


class CreatedConnection(ConnectionView):
    """The connection, with what to deploy (the only answers besides getConnectionTemplate that carry the
    external ID)."""

    template: TemplateInfo


class ProviderConfigInput(RequestModel):
    account_id: AccountId = Field(description="The 12-digit AWS account ID.")
    region: Region = Field(description="The connection's home region (networks default to it).")
    role_arn: Annotated[RoleArn | None, NotNull] = Field(
        default=None, description="The role the template creates; by default arn:aws:iam::<accountId>:role/"
                                  "SailplaneConnection-<connection ID>.")


class CreateConnectionRequest(RequestModel):
    name: Name
    provider: Literal["aws"] = "aws"
    provider_config: ProviderConfigInput


class ProviderConfigUpdate(RequestModel):
    region: Annotated[Region | None, NotNull] = None
    stack_arn: Annotated[StackArn | None, NotNull] = Field(
        default=None, description="The deployed stack, when it is not named as getConnectionTemplate says.")


class UpdateConnectionRequest(RequestModel):
    name: Annotated[Name | None, NotNull] = None
    provider_config: Annotated[ProviderConfigUpdate | None, NotNull] = None


class ConnectionIncluded(ApiModel):
    operations: list[OperationView]


class ConnectionList(ApiModel):
    total: int
    items: list[ConnectionView]
    included: ConnectionIncluded
    marker: str | None = None


class ConnectionDetail(ApiModel):
    item: ConnectionView
    included: ConnectionIncluded


class RegionView(ApiModel):
    region: str
    opt_in_status: str | None = None


class RegionList(ApiModel):
    items: list[RegionView]


class InstanceTypeView(ApiModel):
    """An EC2 instance type as a Kubernetes node: its pods limit and the CPU left to pods (EKS's formulas)."""

    provider: str
    instance_type: str
    v_cpus: int = Field(alias="vCpus")
    memory_mi_b: int = Field(alias="memoryMiB")
    architecture: str
    gpu_count: int
    instance_family: str
    max_pods: int
    group: str = Field(description="general, compute, memory, storage, accelerated or other.")
    allocatable_milli_cpu: int


class InstanceTypeMetadata(ApiModel):
    """What Sailplane reserves on nodes for system pods when it sizes clusters (estimates, per provider)."""

    provider: str
    system_pods_per_node: int
    system_pods_per_system_node: int
    system_pods_fixed: int
    system_pods_per_node_margin: int
    system_pods_fixed_margin: int
    system_milli_cpu_per_node: int = Field(alias="systemMilliCPUPerNode")
    system_milli_cpu_fixed: int = Field(alias="systemMilliCPUFixed")
    karpenter_milli_cpu_per_replica: int = Field(alias="karpenterMilliCPUPerReplica")
    karpenter_replicas: int


class InstanceTypeList(ApiModel):
    items: list[InstanceTypeView]
    metadata: InstanceTypeMetadata


class SubnetView(ApiModel):
    subnet_id: str
    cidr: str
    availability_zone: str | None = None
    available_ip_address_count: int | None = None
    map_public_ip_on_launch: bool = False
    name: str | None = None


class ProviderNetworkView(ApiModel):
    provider: str
    vpc_id: str
    cidr: str
    name: str | None = None
    az_count: int
    state: str | None = None
    is_default: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    subnets: list[SubnetView]


class ProviderNetworkList(ApiModel):
    items: list[ProviderNetworkView]
