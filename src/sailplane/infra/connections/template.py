"""The CloudFormation template an organization's admin deploys to connect an AWS account.

It creates one IAM role that Sailplane's principal may assume only with the connection's external ID (the
confused-deputy guard), with the permissions Sailplane needs in that account. `TEMPLATE_VERSION` goes up whenever
the role or its permissions change; the stack's `TemplateVersion` output says which version is deployed, and
syncConnectionTemplate brings an older stack up to date (UpdateStack through the role itself, which is why the role
may update its own stack and role).

CloudFormation builds a stack's resources with its caller's credentials, so the role holds what each resource type's
handlers need (create, read, update, delete) for the stacks Sailplane makes: the networks' (`networks.template`) and,
from version 3, the provisioned clusters' (`clusters.template`), each as narrowly as the resources allow: stacks
`sailplane-network-*` / `sailplane-cluster-*`; IAM roles only of this connection's cluster roles' prefix
(`clusters.template.role_name_prefix`), with only the AWS managed policies those roles use, passed only to the services
that take them; EKS clusters named `sailplane-*` and their node groups and access entries. Plus what Sailplane itself
calls with the role: describing a cluster and its node groups (health), CloudWatch GetMetricData (metrics).
`tests/infra/test_connection_permissions.py` checks the policy against AWS's own resource provider schemas (cfn-lint's
copy): a resource type or property added to a stack without its permissions fails there, not on a customer's account.
"""

from __future__ import annotations

from typing import Any

from sailplane.infra.clusters import template as clusters

TEMPLATE_VERSION = "3"  # 2: the network stacks' permissions; 3: the cluster stacks' permissions
PARAM_EXTERNAL_ID, PARAM_PRINCIPAL, PARAM_ROLE_NAME = "ExternalId", "SailplanePrincipalArn", "RoleName"


def role_name_for(connection_id: str) -> str:
    return f"SailplaneConnection-{connection_id}"


def stack_name_for(connection_id: str) -> str:
    return f"sailplane-connection-{connection_id.lower()}"


# What CloudFormation does with the role's credentials when it builds or deletes a network's stack
# (infra/networks/template.py): the VPC, subnets, gateways, routing, the NAT's address, the security group.
_NETWORK_ACTIONS = (
    "CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "DescribeVpcs", "DescribeVpcAttribute", "CreateSubnet",
    "DeleteSubnet", "ModifySubnetAttribute", "DescribeSubnets", "CreateInternetGateway", "DeleteInternetGateway",
    "AttachInternetGateway", "DetachInternetGateway", "DescribeInternetGateways", "CreateRouteTable",
    "DeleteRouteTable", "CreateRoute", "DeleteRoute", "ReplaceRoute", "AssociateRouteTable",
    "DisassociateRouteTable", "DescribeRouteTables", "AllocateAddress", "ReleaseAddress", "DescribeAddresses",
    "CreateNatGateway", "DeleteNatGateway", "DescribeNatGateways", "CreateSecurityGroup", "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress", "DescribeSecurityGroups", "CreateTags", "DeleteTags",
    # 3: what the resource types' handlers also read or change (their provider schemas)
    "DescribeNetworkAcls", "DescribeVpcEncryptionControls", "DescribeVpnGateways", "DescribeNetworkInterfaces",
    "DescribeInstances", "ReplaceRouteTableAssociation",
    "UpdateSecurityGroupRuleDescriptionsIngress", "UpdateSecurityGroupRuleDescriptionsEgress",
)
# What CloudFormation does for a provisioned cluster's stack (infra/clusters/template.py) with the role's credentials
# beyond its IAM and EKS statements: EKS's checks of the subnets and security groups it is given, and CloudWatch
# GetMetricData (getProvisionedClusterMetrics; it has no resource-level permissions).
_CLUSTER_LOOKUPS = (
    "ec2:DescribeSecurityGroups", "ec2:DescribeRouteTables", "ec2:DescribeKeyPairs", "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions", "cloudwatch:GetMetricData",
)
# The EKS actions of the cluster stacks' resources (the cluster, its node group, its access entries) and of
# getProvisionedClusterHealth (DescribeCluster, ListNodegroups, DescribeNodegroup).
_EKS_ACTIONS = (
    "CreateCluster", "DeleteCluster", "DescribeCluster", "UpdateClusterConfig", "UpdateClusterVersion",
    "ActivateCertificateAuthority", "DescribeUpdate", "ListUpdates", "TagResource", "UntagResource",
    "CreateNodegroup", "DeleteNodegroup", "DescribeNodegroup", "ListNodegroups", "UpdateNodegroupConfig",
    "UpdateNodegroupVersion", "CreateAccessEntry", "DeleteAccessEntry", "DescribeAccessEntry", "UpdateAccessEntry",
    "ListAccessEntries", "AssociateAccessPolicy", "DisassociateAccessPolicy", "ListAssociatedAccessPolicies",
)
# What CloudFormation does to the cluster stacks' roles (create, read, update, delete an AWS::IAM::Role), and what
# EKS reads of the roles it is given. Not PutRolePolicy nor a permissions boundary: the roles have neither, and a
# role that may write any inline policy into a role it creates may give itself anything.
_CLUSTER_ROLE_ACTIONS = (
    "CreateRole", "DeleteRole", "GetRole", "UpdateRole", "UpdateRoleDescription", "UpdateAssumeRolePolicy", "TagRole",
    "UntagRole", "ListAttachedRolePolicies", "ListRolePolicies", "GetRolePolicy", "DeleteRolePolicy",
)
# The service-linked roles EKS makes on an account's first cluster and node group (with its caller's permission).
_EKS_SERVICE_LINKED_ROLES = {"eks.amazonaws.com": "AWSServiceRoleForAmazonEKS",
                             "eks-nodegroup.amazonaws.com": "AWSServiceRoleForAmazonEKSNodegroup"}


def _arn(resource: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{resource}"}


def _managed(policies: tuple[str, ...]) -> list[dict[str, str]]:
    return [_arn(f"iam::aws:policy/{name}") for name in policies]


def _permissions(connection_id: str, stack_name: str) -> dict[str, Any]:
    """What the role may do: read the account's regions, instance types and networks; keep its own stack (and so
    its own role) up to date; build and delete networks' stacks (version 2) and provisioned clusters' stacks, read
    their clusters' health and metrics (version 3)."""
    stack_arn = _arn(f"cloudformation:*:${{AWS::AccountId}}:stack/{stack_name}/*")
    own_role = _arn("iam::${AWS::AccountId}:role/${RoleName}")
    network_stacks = _arn("cloudformation:*:${AWS::AccountId}:stack/sailplane-network-*/*")
    cluster_stacks = _arn(f"cloudformation:*:${{AWS::AccountId}}:stack/{clusters.PROJECT}-*/*")
    roles = f"iam::${{AWS::AccountId}}:role/{clusters.role_name_prefix(connection_id)}*"
    cluster_role = _arn(f"{roles}-{clusters.CLUSTER_ROLE_SUFFIX}")
    node_role = _arn(f"{roles}-{clusters.NODE_ROLE_SUFFIX}")
    eks_name = clusters.cluster_name_for("*")  # sailplane-*: cluster names carry no connection
    eks = [_arn(f"eks:*:${{AWS::AccountId}}:{kind}/{eks_name}{rest}")
           for kind, rest in (("cluster", ""), ("nodegroup", "/*"), ("access-entry", "/*"))]
    service_linked = [_arn(f"iam::${{AWS::AccountId}}:role/aws-service-role/{service}/{name}")
                      for service, name in _EKS_SERVICE_LINKED_ROLES.items()]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Discover", "Effect": "Allow", "Resource": "*",
             "Action": ["ec2:DescribeRegions", "ec2:DescribeInstanceTypes", "ec2:DescribeInstanceTypeOfferings",
                        "ec2:DescribeAvailabilityZones", "ec2:DescribeVpcs", "ec2:DescribeSubnets"]},
            {"Sid": "OwnStack", "Effect": "Allow", "Resource": stack_arn,
             "Action": ["cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
                        "cloudformation:GetTemplate", "cloudformation:UpdateStack"]},
            {"Sid": "NetworkStacks", "Effect": "Allow", "Resource": network_stacks,
             "Action": ["cloudformation:CreateStack", "cloudformation:DeleteStack", "cloudformation:DescribeStacks",
                        "cloudformation:DescribeStackEvents", "cloudformation:GetTemplate",
                        "cloudformation:TagResource"]},
            {"Sid": "NetworkResources", "Effect": "Allow", "Resource": "*",
             "Action": [f"ec2:{action}" for action in _NETWORK_ACTIONS]},
            {"Sid": "OwnRole", "Effect": "Allow", "Resource": own_role,
             "Action": ["iam:GetRole", "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy",
                        "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies",
                        "iam:ListAttachedRolePolicies", "iam:TagRole", "iam:UntagRole"]},
            {"Sid": "ClusterStacks", "Effect": "Allow", "Resource": cluster_stacks,
             "Action": ["cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
                        "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
                        "cloudformation:GetTemplate", "cloudformation:TagResource"]},
            {"Sid": "ClusterRoles", "Effect": "Allow", "Resource": _arn(roles),
             "Action": [f"iam:{action}" for action in _CLUSTER_ROLE_ACTIONS]},
            {"Sid": "ClusterRolePolicies", "Effect": "Allow", "Resource": cluster_role,
             "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
             "Condition": {"StringEquals": {"iam:PolicyARN": _managed(clusters.CLUSTER_ROLE_POLICIES)}}},
            {"Sid": "NodeRolePolicies", "Effect": "Allow", "Resource": node_role,
             "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
             "Condition": {"StringEquals": {"iam:PolicyARN": _managed(clusters.NODE_ROLE_POLICIES)}}},
            # The job runner's role is passed to nothing yet (EKS Pod Identity associations come with the
            # Kubernetes backend, in a later version: to pods.eks.amazonaws.com).
            {"Sid": "PassClusterRole", "Effect": "Allow", "Resource": cluster_role, "Action": "iam:PassRole",
             "Condition": {"StringEquals": {"iam:PassedToService": "eks.amazonaws.com"}}},
            {"Sid": "PassNodeRole", "Effect": "Allow", "Resource": node_role, "Action": "iam:PassRole",
             "Condition": {"StringEquals": {"iam:PassedToService": ["eks.amazonaws.com", "ec2.amazonaws.com"]}}},
            {"Sid": "EksServiceLinkedRoles", "Effect": "Allow", "Resource": service_linked,
             "Action": "iam:CreateServiceLinkedRole",
             "Condition": {"StringEquals": {"iam:AWSServiceName": list(_EKS_SERVICE_LINKED_ROLES)}}},
            {"Sid": "Clusters", "Effect": "Allow", "Resource": eks,
             "Action": [f"eks:{action}" for action in _EKS_ACTIONS]},
            {"Sid": "ClusterLookups", "Effect": "Allow", "Resource": "*", "Action": list(_CLUSTER_LOOKUPS)},
        ],
    }


def template(connection_id: str, *, external_id: str, principal_arn: str, role_name: str,
             stack_name: str) -> dict[str, Any]:
    """The template with our defaults filled in (deployable as it is). The external ID's parameter is NoEcho, so
    CloudFormation never shows it back."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Sailplane connection {connection_id}: a cross-account IAM role Sailplane assumes with an "
                       f"external ID (template version {TEMPLATE_VERSION}).",
        "Metadata": {"Sailplane": {"ConnectionId": connection_id, "TemplateVersion": TEMPLATE_VERSION,
                                   "StackName": stack_name}},
        "Parameters": {
            PARAM_EXTERNAL_ID: {"Type": "String", "NoEcho": True, "MinLength": 2, "MaxLength": 1224,
                                "Default": external_id,
                                "Description": "The external ID Sailplane presents when it assumes the role."},
            PARAM_PRINCIPAL: {"Type": "String", "Default": principal_arn,
                              "Description": "The AWS principal Sailplane runs as (the role trusts it)."},
            PARAM_ROLE_NAME: {"Type": "String", "Default": role_name, "MaxLength": 64,
                              "Description": "The name of the role this stack creates."},
        },
        "Resources": {
            "SailplaneRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": {"Ref": PARAM_ROLE_NAME},
                    "Description": f"Sailplane connection {connection_id}",
                    "MaxSessionDuration": 3600,
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": {"AWS": {"Ref": PARAM_PRINCIPAL}},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": PARAM_EXTERNAL_ID}}},
                        }],
                    },
                    "Policies": [{"PolicyName": "sailplane-connection",
                                  "PolicyDocument": _permissions(connection_id, stack_name)}],
                    "Tags": [{"Key": "sailplane:connection", "Value": connection_id},
                             {"Key": "sailplane:template-version", "Value": TEMPLATE_VERSION}],
                },
            },
        },
        "Outputs": {
            "RoleArn": {"Description": "Give Sailplane this role's ARN (it is also computed from the account).",
                        "Value": {"Fn::GetAtt": ["SailplaneRole", "Arn"]}},
            "TemplateVersion": {"Description": "The Sailplane template version this stack runs.",
                                "Value": TEMPLATE_VERSION},
        },
    }


def deployed_version(stack: dict[str, Any]) -> str | None:
    """The `TemplateVersion` output of a stack CloudFormation describes (None: not one of ours)."""
    for output in stack.get("Outputs") or []:
        if output.get("OutputKey") == "TemplateVersion":
            return str(output.get("OutputValue"))
    return None
