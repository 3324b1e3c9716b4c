"""The CloudFormation template an organization's admin deploys to connect an AWS account.

It creates one IAM role that Sailplane's principal may assume only with the connection's external ID (the
confused-deputy guard), with the permissions Sailplane needs in that account. `TEMPLATE_VERSION` goes up whenever
the role or its permissions change; the stack's `TemplateVersion` output says which version is deployed, and
syncConnectionTemplate brings an older stack up to date (UpdateStack through the role itself, which is why the role
may update its own stack and role).
"""

from __future__ import annotations

from typing import Any

TEMPLATE_VERSION = "2"  # 2: the network stacks' permissions
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
)


def _permissions(stack_name: str) -> dict[str, Any]:
    """What the role may do: read the account's regions, instance types and networks; keep its own stack (and so
    its own role) up to date; build and delete networks' stacks (version 2). Clusters (later) add their own statements
    in a new version."""
    stack_arn = {"Fn::Sub": f"arn:${{AWS::Partition}}:cloudformation:*:${{AWS::AccountId}}:stack/{stack_name}/*"}
    own_role = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${RoleName}"}
    network_stacks = {"Fn::Sub": "arn:${AWS::Partition}:cloudformation:*:${AWS::AccountId}:stack/sailplane-network-*/*"}
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
             "Action": ["iam:GetRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy",
                        "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:TagRole", "iam:UntagRole"]},
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
                    "Policies": [{"PolicyName": "sailplane-connection", "PolicyDocument": _permissions(stack_name)}],
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
