"""The CloudFormation template of a provisioned cluster: the EKS cluster and its IAM role, the system node group and
its nodes' role, the job runner's role (what Sail jobs on the cluster run as, assumed through EKS Pod Identity), and
who may use the cluster's Kubernetes API. Its outputs become the cluster's `iacOutputs`, `providerMetadata` and
`jobRunnerRoleArn`. The three roles are named `sailplane-<connection>-<cluster>-cluster|node|jr`
(`role_name_prefix`), since the connection's role may create, change, pass and delete roles of that prefix only.

Access to the Kubernetes API is by EKS access entries only (`AccessConfig.AuthenticationMode` `API`): who may reach
the cluster is the list EKS answers (ListAccessEntries, audited by CloudTrail), not an `aws-auth` ConfigMap anyone
with write access to `kube-system` could edit; a new cluster has no ConfigMap to honour (and EKS moves the mode one
way only, so a later `API_AND_CONFIG_MAP` is never needed). The entries are resources of this stack
(`AWS::EKS::AccessEntry`), so every update keeps them as they are, a resumed operation finds them made by the stack
it resumes, and destroying the cluster deletes them with it:
- `ConnectionAccess`: the connection's role (the principal Sailplane acts as in the account: it creates the stack,
  and signs the bearer tokens of getProvisionedClusterHealth and, later, of the Kubernetes compute backend) gets
  `AmazonEKSClusterAdminPolicy` on the whole cluster: Sailplane reads nodes and `kube-system`, and will create the
  workloads' namespace, service accounts and system components, which is cluster-wide work.
- `JobRunnerAccess`: the job runner's role gets `AmazonEKSEditPolicy` scoped to `WORKLOAD_NAMESPACE` only. It is
  the identity of pods that run users' code, so it gets what Spark on Kubernetes needs where the workloads run (a
  driver creates and deletes its executor pods, services and config maps) and nothing elsewhere: not `kube-system`,
  not nodes nor other cluster-scoped objects, and no RBAC (`edit`, not `admin`: no roles or bindings), so a job
  cannot reach past its namespace nor touch the system node group's pods. The namespace is where the Kubernetes
  backend will run workloads (it creates it; an access scope may name a namespace before it exists).
- `BootstrapClusterCreatorAdminPermissions` is false: the creator is the connection's role (CloudFormation runs with
  the caller's credentials), and EKS's own admin entry for it would make `ConnectionAccess` fail (the principal has
  an entry already) and would be an entry outside the stack. The flag is only read when a cluster is created (a
  change replaces the cluster, which CloudFormation refuses for one with a `Name`); no cluster stack in an account
  predates it (version 3 of the connection's template is the first to grant the cluster stacks' permissions).
A kubeconfig (`kubeconfig.py`) runs `aws eks get-token` with the AWS identity of whoever uses it: a session of the
connection's role (what Sailplane signs its own tokens with) is cluster admin; any other identity (an admin's own)
needs an access entry of its own, which Sailplane does not make.
"""

from __future__ import annotations

from typing import Any

PROJECT = "sailplane-cluster"
_MANAGED = "arn:aws:iam::aws:policy/"
_ACCESS_POLICY = "arn:aws:eks::aws:cluster-access-policy/"
WORKLOAD_NAMESPACE = "sailplane-workloads"  # where the Kubernetes backend runs workloads (the job runner's scope)
CONNECTION_ACCESS_POLICY = f"{_ACCESS_POLICY}AmazonEKSClusterAdminPolicy"
JOB_RUNNER_ACCESS_POLICY = f"{_ACCESS_POLICY}AmazonEKSEditPolicy"
# The roles' names end so (`role_name_prefix`): the connection's template passes `*-cluster` to EKS and `*-node` to
# EKS and EC2 only, and attaches only these AWS managed policies to its roles.
CLUSTER_ROLE_SUFFIX, NODE_ROLE_SUFFIX = "cluster", "node"
CLUSTER_ROLE_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_ROLE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")


def stack_name_for(cluster_id: str) -> str:
    return f"{PROJECT}-{cluster_id.lower()}"


def cluster_name_for(cluster_id: str) -> str:
    return f"sailplane-{cluster_id.lower()}"


def role_name_prefix(connection_id: str) -> str:
    """What every IAM role of a cluster stack of this connection is named with: the connection's template lets its
    role create, change, pass and delete roles of this prefix only (`connections.template`)."""
    return f"sailplane-{connection_id.lower()}-"


def _role_name(connection_id: str, cluster_id: str, suffix: str) -> str:
    # IDs are at most 20 characters (kit.ids): at most 59 of IAM's 64, so the suffix (what the connection's template
    # tells the cluster's role from the nodes') is never cut off.
    return f"{role_name_prefix(connection_id)}{cluster_id.lower()}-{suffix}"


def cluster_role_name(connection_id: str, cluster_id: str) -> str:
    return _role_name(connection_id, cluster_id, CLUSTER_ROLE_SUFFIX)


def node_role_name(connection_id: str, cluster_id: str) -> str:
    return _role_name(connection_id, cluster_id, NODE_ROLE_SUFFIX)


def job_runner_role_name(connection_id: str, cluster_id: str) -> str:
    return _role_name(connection_id, cluster_id, "jr")


def _trust(service: str, *actions: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                                    "Action": list(actions) or ["sts:AssumeRole"]}]}


def _tags(cluster_id: str, **extra: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in {"sailplane:cluster": cluster_id, **extra}.items()]


def _access_entry(cluster_id: str, principal: Any, policy: str, scope: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "AWS::EKS::AccessEntry", "Properties": {
        "ClusterName": {"Ref": "Cluster"}, "PrincipalArn": principal, "Type": "STANDARD",
        "AccessPolicies": [{"PolicyArn": policy, "AccessScope": scope}], "Tags": _tags(cluster_id)}}


def template(cluster_id: str, connection_id: str, *, connection_role_arn: str, kubernetes_version: str,
             node_group: dict[str, Any], public_access_cidrs: list[str], subnet_ids: list[str],
             security_group_ids: list[str]) -> dict[str, Any]:
    """The stack's template: the cluster in `subnet_ids` (the network's private subnets, or the adopted VPC's), its
    Kubernetes API open to `connection_role_arn` (admin) and the job runner's role (its namespace)."""
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
            "RoleName": cluster_role_name(connection_id, cluster_id),
            "AssumeRolePolicyDocument": _trust("eks.amazonaws.com"),
            "ManagedPolicyArns": [f"{_MANAGED}{p}" for p in CLUSTER_ROLE_POLICIES], "Tags": _tags(cluster_id)}},
        "NodeRole": {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": node_role_name(connection_id, cluster_id),
            "AssumeRolePolicyDocument": _trust("ec2.amazonaws.com"),
            "ManagedPolicyArns": [f"{_MANAGED}{p}" for p in NODE_ROLE_POLICIES], "Tags": _tags(cluster_id)}},
        "JobRunnerRole": {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": job_runner_role_name(connection_id, cluster_id),
            "AssumeRolePolicyDocument": _trust("pods.eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession"),
            "Tags": _tags(cluster_id)}},
        "Cluster": {"Type": "AWS::EKS::Cluster", "Properties": {
            "Name": name, "Version": kubernetes_version, "RoleArn": {"Fn::GetAtt": ["ClusterRole", "Arn"]},
            "ResourcesVpcConfig": vpc,
            "AccessConfig": {"AuthenticationMode": "API", "BootstrapClusterCreatorAdminPermissions": False},
            "Tags": _tags(cluster_id)}},
        "SystemNodeGroup": {"Type": "AWS::EKS::Nodegroup", "Properties": {
            "ClusterName": {"Ref": "Cluster"}, "NodegroupName": node_group["name"],
            "NodeRole": {"Fn::GetAtt": ["NodeRole", "Arn"]}, "Subnets": subnet_ids,
            "InstanceTypes": instance_types, "DiskSize": node_group["diskSizeGb"],
            "ScalingConfig": {"MinSize": node_group["minSize"], "MaxSize": node_group["maxSize"],
                              "DesiredSize": node_group["desiredSize"]},
            "Labels": {"sailplane.io/node-role": "system"}, "Tags": {"sailplane:cluster": cluster_id}}},
        "ConnectionAccess": _access_entry(cluster_id, connection_role_arn, CONNECTION_ACCESS_POLICY,
                                          {"Type": "cluster"}),
        "JobRunnerAccess": _access_entry(cluster_id, {"Fn::GetAtt": ["JobRunnerRole", "Arn"]},
                                         JOB_RUNNER_ACCESS_POLICY,
                                         {"Type": "namespace", "Namespaces": [WORKLOAD_NAMESPACE]}),
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
