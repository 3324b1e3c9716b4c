"""The CloudFormation template of a network: a VPC with a public and a private subnet in each of two (or more)
availability zones, an internet gateway for the public ones, a NAT gateway for the private ones (EKS nodes), and a
security group for what Sailplane runs there. Its outputs become the network's `iacOutputs`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sailplane.infra.networks.cidr import subnets

PROJECT = "sailplane-network"
MIN_ZONES, MAX_ZONES = 2, 3


def stack_name_for(network_id: str) -> str:
    return f"{PROJECT}-{network_id.lower()}"


def _tags(network_id: str, name: str, **extra: str) -> list[dict[str, str]]:
    tags = {"Name": name, "sailplane:network": network_id, **extra}
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def template(network_id: str, cidr: str, zones: list[str]) -> dict[str, Any]:
    """The stack's template for `cidr` across `zones` (MIN_ZONES to MAX_ZONES of them)."""
    zones = zones[:MAX_ZONES]
    parts = subnets(ipaddress.IPv4Network(cidr), len(zones))
    public, private = parts[:len(zones)], parts[len(zones):]
    name = stack_name_for(network_id)
    resources: dict[str, Any] = {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {
            "CidrBlock": cidr, "EnableDnsSupport": True, "EnableDnsHostnames": True, "Tags": _tags(network_id, name)}},
        "InternetGateway": {"Type": "AWS::EC2::InternetGateway", "Properties": {"Tags": _tags(network_id, name)}},
        "GatewayAttachment": {"Type": "AWS::EC2::VPCGatewayAttachment", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "InternetGatewayId": {"Ref": "InternetGateway"}}},
        "PublicRouteTable": {"Type": "AWS::EC2::RouteTable", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "Tags": _tags(network_id, f"{name}-public")}},
        "PublicDefaultRoute": {"Type": "AWS::EC2::Route", "DependsOn": "GatewayAttachment", "Properties": {
            "RouteTableId": {"Ref": "PublicRouteTable"}, "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": {"Ref": "InternetGateway"}}},
        "NatAddress": {"Type": "AWS::EC2::EIP", "DependsOn": "GatewayAttachment", "Properties": {"Domain": "vpc"}},
        "NatGateway": {"Type": "AWS::EC2::NatGateway", "Properties": {
            "AllocationId": {"Fn::GetAtt": ["NatAddress", "AllocationId"]}, "SubnetId": {"Ref": "PublicSubnet1"},
            "Tags": _tags(network_id, name)}},
        "PrivateRouteTable": {"Type": "AWS::EC2::RouteTable", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "Tags": _tags(network_id, f"{name}-private")}},
        "PrivateDefaultRoute": {"Type": "AWS::EC2::Route", "Properties": {
            "RouteTableId": {"Ref": "PrivateRouteTable"}, "DestinationCidrBlock": "0.0.0.0/0",
            "NatGatewayId": {"Ref": "NatGateway"}}},
        "SecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": f"Sailplane network {network_id}: traffic within the network",
            "VpcId": {"Ref": "Vpc"},
            "SecurityGroupIngress": [{"IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIp": cidr,
                                      "Description": "Everything from within the network"}],
            "SecurityGroupEgress": [{"IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIp": "0.0.0.0/0",
                                     "Description": "Everything out"}],
            "Tags": _tags(network_id, name)}},
    }
    for index, (zone, block) in enumerate(zip(zones, public, strict=True), start=1):
        resources[f"PublicSubnet{index}"] = {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "CidrBlock": block, "AvailabilityZone": zone, "MapPublicIpOnLaunch": True,
            "Tags": _tags(network_id, f"{name}-public-{zone}", **{"kubernetes.io/role/elb": "1"})}}
        resources[f"PublicSubnet{index}Routes"] = {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
            "SubnetId": {"Ref": f"PublicSubnet{index}"}, "RouteTableId": {"Ref": "PublicRouteTable"}}}
    for index, (zone, block) in enumerate(zip(zones, private, strict=True), start=1):
        resources[f"PrivateSubnet{index}"] = {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "CidrBlock": block, "AvailabilityZone": zone,
            "Tags": _tags(network_id, f"{name}-private-{zone}", **{"kubernetes.io/role/internal-elb": "1"})}}
        resources[f"PrivateSubnet{index}Routes"] = {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
            "SubnetId": {"Ref": f"PrivateSubnet{index}"}, "RouteTableId": {"Ref": "PrivateRouteTable"}}}
    count = range(1, len(zones) + 1)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Sailplane network {network_id}: a VPC ({cidr}) across {len(zones)} availability zones.",
        "Metadata": {"Sailplane": {"NetworkId": network_id}},
        "Resources": resources,
        "Outputs": {
            "VpcId": {"Value": {"Ref": "Vpc"}},
            "VpcCidr": {"Value": cidr},
            "PublicSubnetIds": {"Value": {"Fn::Join": [",", [{"Ref": f"PublicSubnet{i}"} for i in count]]}},
            "PrivateSubnetIds": {"Value": {"Fn::Join": [",", [{"Ref": f"PrivateSubnet{i}"} for i in count]]}},
            "SecurityGroupId": {"Value": {"Ref": "SecurityGroup"}},
            "NatGatewayId": {"Value": {"Ref": "NatGateway"}},
            "AvailabilityZones": {"Value": ",".join(zones)},
        },
    }
