"""The CloudFormation template of a provisioned cluster: the EKS cluster and its IAM role, the system node group and
its nodes' role, and the job runner's role (what Sail jobs on the cluster run as, assumed through EKS Pod
Identity). Its outputs become the cluster's `iacOutputs`, `providerMetadata` and `jobRunnerRoleArn`.
"""

from __future__ import annotations

from typing import Any

PROJECT = "sailplane-cluster"
_MANAGED = "arn:aws:iam::aws:policy/"


def stack_name_for(cluster_id: str) -> str:
    return f"{PROJECT}-{cluster_id.lower()}"


def cluster_name_for(cluster_id: str) -> str:
    return f"sailplane-{cluster_id.lower()}"


def job_runner_role_name(connection_id: str, cluster_id: str) -> str:
    return f"sailplane-{connection_id.lower()}-{cluster_id.lower()}-jr"[:64]


def _trust(service: str, *actions: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                                    "Action": list(actions) or ["sts:AssumeRole"]}]}


def _tags(cluster_id: str, **extra: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in {"sailplane:cluster": cluster_id, **extra}.items()]


def template(cluster_id: str, connection_id: str, *, kubernetes_version: str, node_group: dict[str, Any],
             public_access_cidrs: list[str], subnet_ids: list[str], security_group_ids: list[str]) -> dict[str, Any]:
    """The stack's template: the cluster in `subnet_ids` (the network's private subnets, or the adopted VPC's)."""
    name = cluster_name_for(cluster_id)
    instance_types = list(dict.fromkeys(t for alternatives in node_group["instanceTypes"] for t in alternatives))
    vpc: dict[str, Any] = {"SubnetIds": subnet_ids, "EndpointPrivateAccess": True,
                           "EndpointPublicAccess": bool(public_access_cidrs)}
    if public_access_cidrs:
        vpc["PublicAccessCidrs"] = public_access_cidrs
    if security_group_ids:
        vpc["SecurityGroupIds"] = security_group_ids
    resources: dict[str, Any] = {
        "ClusterRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": _trust("eks.amazonaws.com"),
            "ManagedPolicyArns": [f"{_MANAGED}AmazonEKSClusterPolicy"], "Tags": _tags(cluster_id)}},
        "NodeRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": _trust("ec2.amazonaws.com"),
            "ManagedPolicyArns": [f"{_MANAGED}AmazonEKSWorkerNodePolicy", f"{_MANAGED}AmazonEKS_CNI_Policy",
                                  f"{_MANAGED}AmazonEC2ContainerRegistryReadOnly"], "Tags": _tags(cluster_id)}},
        "JobRunnerRole": {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": job_runner_role_name(connection_id, cluster_id),
            "AssumeRolePolicyDocument": _trust("pods.eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession"),
            "Tags": _tags(cluster_id)}},
        "Cluster": {"Type": "AWS::EKS::Cluster", "Properties": {
            "Name": name, "Version": kubernetes_version, "RoleArn": {"Fn::GetAtt": ["ClusterRole", "Arn"]},
            "ResourcesVpcConfig": vpc, "AccessConfig": {"AuthenticationMode": "API"},
            "Tags": _tags(cluster_id)}},
        "SystemNodeGroup": {"Type": "AWS::EKS::Nodegroup", "Properties": {
            "ClusterName": {"Ref": "Cluster"}, "NodegroupName": node_group["name"],
            "NodeRole": {"Fn::GetAtt": ["NodeRole", "Arn"]}, "Subnets": subnet_ids,
            "InstanceTypes": instance_types, "DiskSize": node_group["diskSizeGb"],
            "ScalingConfig": {"MinSize": node_group["minSize"], "MaxSize": node_group["maxSize"],
                              "DesiredSize": node_group["desiredSize"]},
            "Labels": {"sailplane.io/node-role": "system"}, "Tags": {"sailplane:cluster": cluster_id}}},
    }
    outputs = {
        "ClusterName": {"Value": {"Ref": "Cluster"}},
        "ClusterArn": {"Value": {"Fn::GetAtt": ["Cluster", "Arn"]}},
        "ClusterEndpoint": {"Value": {"Fn::GetAtt": ["Cluster", "Endpoint"]}},
        "ClusterCertificateAuthority": {"Value": {"Fn::GetAtt": ["Cluster", "CertificateAuthorityData"]}},
        "NodeGroupName": {"Value": node_group["name"]},
        "JobRunnerRoleArn": {"Value": {"Fn::GetAtt": ["JobRunnerRole", "Arn"]}},
    }
    return {"AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"Sailplane: the EKS cluster {name} and its system node group",
            "Resources": resources, "Outputs": outputs}
