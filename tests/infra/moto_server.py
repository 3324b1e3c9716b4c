"""The moto server of the infrastructure tests (`python -m tests.infra.moto_server -H … -p …`), with the
CloudFormation pieces moto 5.1 lacks and the network's and cluster's stacks need.

moto's `AWS::EC2::RouteTable` has no CloudFormation delete: deleting a stack leaves its route tables behind, so
the stack's VPC can never be deleted (DependencyViolation), unlike in AWS, where DeleteStack removes a route table
with its associations. This adds that delete (disassociate, then delete the table: what AWS does).

moto's CloudFormation has no `AWS::EKS::Cluster` nor `AWS::EKS::Nodegroup` (it skips them). These add both,
creating and deleting through moto's own EKS backend (so DescribeCluster sees what the stack made), with the
attributes AWS gives (`Arn`, `Endpoint`, `CertificateAuthorityData`). moto's clusters have no Kubernetes API server
behind their endpoint: with `SAILPLANE_TEST_EKS_ENDPOINT` and `SAILPLANE_TEST_EKS_CA` set, a cluster the stack makes
gets that endpoint and CA (the tests' stand-in API server, `tests.infra.kube_standin`).

moto's backends are not thread-safe, and its server answers each request on a thread of its own: CreateStacks at
once fail now and then with a 500 from inside moto (about 1 in 200 with 32 at once, boto3 alone; the concurrency
part of bench/operations_bench.py met it), which AWS does not. Requests are answered one at a time here. Nothing
else of moto changes.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.ec2.models import ec2_backends
from moto.ec2.models.route_tables import RouteTable
from moto.eks.models import eks_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main


def _delete_route_table(cls: type[RouteTable], resource_name: str, cloudformation_json: dict[str, Any],
                        account_id: str, region_name: str) -> None:
    backend = ec2_backends[account_id][region_name]
    table = backend.route_tables.get(resource_name)
    if table is None:
        return
    for association_id in list(table.associations):
        backend.disassociate_route_table(association_id)
    backend.delete_route_table(resource_name)


RouteTable.delete_from_cloudformation_json = classmethod(_delete_route_table)  # type: ignore[method-assign,assignment]



class _EksCluster(CloudFormationModel):
    __module__ = "moto.eks.cloudformation"  # moto files its models by service, read from the module's name
    def __init__(self, name: str, account_id: str, region_name: str) -> None:
        self.name, self.account_id, self.region_name = name, account_id, region_name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EKS::Cluster"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Arn", "Endpoint", "CertificateAuthorityData")

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        cluster = eks_backends[self.account_id][self.region_name].clusters[self.name]
        return {"Arn": cluster.arn, "Endpoint": cluster.endpoint,
                "CertificateAuthorityData": cluster.certificate_authority["data"]}[attribute_name]

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[override]
                                        account_id: str, region_name: str, **kwargs: Any) -> _EksCluster:
        props = cloudformation_json["Properties"]
        vpc = {k[0].lower() + k[1:]: v for k, v in props["ResourcesVpcConfig"].items()}
        cluster = eks_backends[account_id][region_name].create_cluster(
            name=resource_name, role_arn=props["RoleArn"], resources_vpc_config=vpc, version=props.get("Version"))
        if os.environ.get("SAILPLANE_TEST_EKS_ENDPOINT"):
            cluster.endpoint = os.environ["SAILPLANE_TEST_EKS_ENDPOINT"]
            cluster.certificate_authority = {"data": os.environ["SAILPLANE_TEST_EKS_CA"]}
        return cls(resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: _EksCluster, new_resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> _EksCluster:
        """In place, as EKS updates a cluster (UpdateClusterVersion, UpdateClusterConfig): its version and endpoint
        access; a cluster deleted behind the stack's back fails the update (moto's ResourceNotFoundException)."""
        props = cloudformation_json["Properties"]
        cluster = eks_backends[account_id][region_name].describe_cluster(original_resource.name)
        cluster.version = props.get("Version") or cluster.version
        vpc = {k[0].lower() + k[1:]: v for k, v in props["ResourcesVpcConfig"].items()}
        cluster.resources_vpc_config = {**(cluster.resources_vpc_config or {}), **vpc}
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        eks_backends[account_id][region_name].delete_cluster(self.name)


class _EksNodegroup(CloudFormationModel):
    __module__ = "moto.eks.cloudformation"  # moto files its models by service, read from the module's name
    def __init__(self, cluster: str, name: str) -> None:
        self.cluster, self.name = cluster, name

    @property
    def physical_resource_id(self) -> str:
        return f"{self.cluster}/{self.name}"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "NodegroupName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EKS::Nodegroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[override]
                                        account_id: str, region_name: str, **kwargs: Any) -> _EksNodegroup:
        props = cloudformation_json["Properties"]
        scaling = {k[0].lower() + k[1:]: v for k, v in (props.get("ScalingConfig") or {}).items()}
        eks_backends[account_id][region_name].create_nodegroup(
            cluster_name=props["ClusterName"], node_role=props["NodeRole"], nodegroup_name=resource_name,
            subnets=props["Subnets"], scaling_config=scaling or None, disk_size=props.get("DiskSize"),
            instance_types=props.get("InstanceTypes"), labels=props.get("Labels"), tags=props.get("Tags"))
        return cls(props["ClusterName"], resource_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: _EksNodegroup, new_resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> _EksNodegroup:
        """The group's sizes, instance types and disk (EKS replaces the group for the last two; here it is changed
        where it is); a group deleted behind the stack's back fails the update."""
        props = cloudformation_json["Properties"]
        group = eks_backends[account_id][region_name].describe_nodegroup(original_resource.cluster,
                                                                          original_resource.name)
        group.scaling_config = {k[0].lower() + k[1:]: v for k, v in (props.get("ScalingConfig") or {}).items()}
        group.instance_types = props.get("InstanceTypes") or group.instance_types
        group.disk_size = props.get("DiskSize") or group.disk_size
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        eks_backends[account_id][region_name].delete_nodegroup(self.cluster, self.name)


_ONE_AT_A_TIME = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialized(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
    with _ONE_AT_A_TIME:
        return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _serialized  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
