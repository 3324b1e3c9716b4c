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

moto 5.1's EKS has no access entries at all: no CreateAccessEntry / ListAccessEntries / DescribeAccessEntry /
AssociateAccessPolicy / ListAssociatedAccessPolicies, no `accessConfig` on a cluster (DescribeCluster never says its
authentication mode), and its CloudFormation has no `AWS::EKS::AccessEntry`. This adds the smallest faithful model:
- a cluster the stack makes keeps its `AccessConfig` (`authenticationMode`, default `CONFIG_MAP` as in CloudFormation;
  `bootstrapClusterCreatorAdminPermissions`, default true) and DescribeCluster answers it; an update moves the mode
  only forward (CONFIG_MAP → API_AND_CONFIG_MAP → API, as EKS), and a changed bootstrap flag fails the update (it
  needs the cluster replaced, which CloudFormation cannot do to a cluster with a `Name`);
- with the bootstrap flag set and a mode that has access entries, the stack's caller (the principal of the
  CreateStack request: an assumed role's role, or an IAM user) gets the cluster admin entry EKS gives the creator;
- `AWS::EKS::AccessEntry` (Ref `cluster|principal`, `AccessEntryArn`): an entry with its access policies, kept on
  moto's EKS cluster object (so it goes when the cluster does); refused as EKS refuses it: a cluster in `CONFIG_MAP`
  mode, a principal that has an entry already (`ResourceInUseException`), a principal that is not an IAM role or
  user's ARN, an access policy EKS does not have, a `namespace` scope without namespaces; policies change in place,
  another principal or cluster is a new entry (the old one deleted);
- the read API on them, shaped as AWS answers: ListAccessEntries (with `associatedPolicyArn`), DescribeAccessEntry,
  ListAssociatedAccessPolicies (one page each).
Not modeled: the write API (entries are made by the stack only here), the `EC2_LINUX` entry EKS adds for a managed
node group's role, and any authorization: the Kubernetes API stand-in does not look the caller's entries up.

moto's backends are not thread-safe, and its server answers each request on a thread of its own: CreateStacks at
once fail now and then with a 500 from inside moto (about 1 in 200 with 32 at once, boto3 alone; the concurrency
part of bench/operations_bench.py met it), which AWS does not. Requests are answered one at a time here. Nothing
else of moto changes.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any
from urllib.parse import unquote

from moto.core.common_models import CloudFormationModel
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.ec2.models.route_tables import RouteTable
from moto.eks import urls as eks_urls
from moto.eks.exceptions import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from moto.eks.models import Cluster, eks_backends
from moto.eks.responses import EKSResponse
from moto.iam.models import iam_backends
from moto.moto_api._internal import mock_random as random
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition


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
        access = props.get("AccessConfig") or {}
        mode = access.get("AuthenticationMode") or "CONFIG_MAP"
        if mode not in _MODES:
            raise InvalidParameterException(message=f"Unsupported authentication mode: {mode}")
        bootstrap = _flag(access.get("BootstrapClusterCreatorAdminPermissions", True))
        cluster.access_config = {  # type: ignore[attr-defined]  # DescribeCluster answers it (`accessConfig`)
            "authenticationMode": mode, "bootstrapClusterCreatorAdminPermissions": bootstrap}
        creator = _caller_arn(account_id, region_name)
        if bootstrap and mode != "CONFIG_MAP" and creator:
            _add_entry(cluster, creator, "STANDARD", None, [], {},
                       [{"PolicyArn": f"{_POLICIES}AmazonEKSClusterAdminPolicy", "AccessScope": {"Type": "cluster"}}])
        return cls(resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: _EksCluster, new_resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> _EksCluster:
        """In place, as EKS updates a cluster (UpdateClusterVersion, UpdateClusterConfig): its version, endpoint
        access and authentication mode (forward only); a cluster deleted behind the stack's back, or a changed
        bootstrap flag, fails the update, changing nothing (moto's ResourceNotFoundException, or EKS's errors)."""
        props = cloudformation_json["Properties"]
        cluster = eks_backends[account_id][region_name].describe_cluster(original_resource.name)
        access = props.get("AccessConfig") or {}
        current = getattr(cluster, "access_config", {"authenticationMode": "CONFIG_MAP",
                                                     "bootstrapClusterCreatorAdminPermissions": True})
        if _flag(access.get("BootstrapClusterCreatorAdminPermissions", True)) \
                != current["bootstrapClusterCreatorAdminPermissions"]:
            raise InvalidParameterException(message="BootstrapClusterCreatorAdminPermissions cannot change: the "
                                                    "cluster would be replaced, and it has a name")
        mode = access.get("AuthenticationMode") or current["authenticationMode"]
        if mode not in _MODES or _MODES.index(mode) < _MODES.index(current["authenticationMode"]):
            raise InvalidRequestException(message=f"Unsupported authentication mode update from "
                                                  f"{current['authenticationMode']} to {mode}")
        cluster.version = props.get("Version") or cluster.version
        vpc = {k[0].lower() + k[1:]: v for k, v in props["ResourcesVpcConfig"].items()}
        cluster.resources_vpc_config = {**(cluster.resources_vpc_config or {}), **vpc}
        cluster.access_config = {**current, "authenticationMode": mode}  # type: ignore[attr-defined]
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


# EKS access entries (what moto lacks: see the module's docstring).
_MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")  # in the only order EKS moves a cluster's mode
_POLICIES = "arn:aws:eks::aws:cluster-access-policy/"
# The access policies EKS has (ListAccessPolicies) that a standard entry may be given.
_POLICY_NAMES = frozenset({"AmazonEKSAdminPolicy", "AmazonEKSAdminViewPolicy", "AmazonEKSClusterAdminPolicy",
                           "AmazonEKSEditPolicy", "AmazonEKSViewPolicy", "AmazonEMRJobPolicy"})
_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):(role|user)/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CALLER = threading.local()  # the access key of the request being answered


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _caller_arn(account_id: str, region_name: str) -> str | None:
    """The IAM principal of the request being answered: an assumed role's role ARN (as EKS names a creator), or an
    IAM user's; None for credentials moto did not issue."""
    key = getattr(_CALLER, "access_key", None)
    if not key:
        return None
    partition = get_partition(region_name)
    role = sts_backends[account_id][partition].get_assumed_role_from_access_key(key)
    if role is not None:
        return str(role.role_arn)
    user = iam_backends[account_id][partition].get_user_from_access_key_id(key)
    return str(user.arn) if user is not None else None


def _entries(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """The cluster's access entries by principal ARN, kept on moto's cluster: they go with it."""
    found: dict[str, dict[str, Any]] = cluster.__dict__.setdefault("access_entries", {})
    return found


def _policies(given: list[dict[str, Any]], before: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """AssociateAccessPolicy's checks and shape for each of an entry's policies (by ARN; one kept keeps its time)."""
    now, found = utcnow(), {}
    for policy in given:
        arn, scope = str(policy.get("PolicyArn") or ""), policy.get("AccessScope") or {}
        if not arn.startswith(_POLICIES) or arn[len(_POLICIES):] not in _POLICY_NAMES:
            raise InvalidParameterException(message=f"The specified policyArn is invalid: {arn}")
        kind, namespaces = scope.get("Type"), list(scope.get("Namespaces") or [])
        if kind not in ("cluster", "namespace"):
            raise InvalidParameterException(message=f"The access scope type is invalid: {kind}")
        if kind == "namespace" and not namespaces:
            raise InvalidParameterException(message="A namespace access scope needs at least one namespace")
        if kind == "cluster" and namespaces:
            raise InvalidParameterException(message="A cluster access scope takes no namespaces")
        bad = [n for n in namespaces if not _NAMESPACE.match(n) or len(n) > 63]
        if bad:
            raise InvalidParameterException(message=f"Not a Kubernetes namespace name: {', '.join(bad)}")
        shaped = {"type": kind, "namespaces": namespaces}
        old = before.get(arn)
        found[arn] = {"policyArn": arn, "accessScope": shaped,
                      "associatedAt": old["associatedAt"] if old else now,
                      "modifiedAt": old["modifiedAt"] if old and old["accessScope"] == shaped else now}
    return found


def _add_entry(cluster: Cluster, principal: str, kind: str, username: str | None, groups: list[str],
               tags: dict[str, str], policies: list[dict[str, Any]]) -> dict[str, Any]:
    """CreateAccessEntry, then AssociateAccessPolicy for each policy, as EKS answers them."""
    mode = getattr(cluster, "access_config", {}).get("authenticationMode", "CONFIG_MAP")
    if mode == "CONFIG_MAP":
        raise InvalidRequestException(message="The cluster's authentication mode must be set to one of [API, "
                                              "API_AND_CONFIG_MAP] to perform this operation.")
    matched = _PRINCIPAL.match(principal)
    if matched is None:
        raise InvalidParameterException(message=f"The specified principalArn is invalid: {principal}")
    if principal in _entries(cluster):
        raise ResourceInUseException(clusterName=cluster.name, nodegroupName=None, addonName=None,
                                     message="The specified access entry resource is already in use on this "
                                             "cluster.")
    if kind != "STANDARD" and policies:
        raise InvalidParameterException(message=f"An access entry of type {kind} takes no access policies")
    account, what, name = matched.groups()
    now = utcnow()
    entry = {"clusterName": cluster.name, "principalArn": principal, "kubernetesGroups": groups,
             "accessEntryArn": cluster.arn.replace(":cluster/", ":access-entry/", 1)
             + f"/{what}/{account}/{name}/{random.uuid4()}",
             "createdAt": now, "modifiedAt": now, "tags": tags, "type": kind,
             "username": username or (f"arn:aws:sts::{account}:assumed-role/{name}/{{{{SessionName}}}}"
                                      if what == "role" else principal),
             "policies": _policies(policies, {})}
    _entries(cluster)[principal] = entry
    return entry


class _EksAccessEntry(CloudFormationModel):
    __module__ = "moto.eks.cloudformation"  # moto files its models by service, read from the module's name

    def __init__(self, cluster: str, principal: str, arn: str) -> None:
        self.cluster, self.principal, self.arn = cluster, principal, arn

    @property
    def physical_resource_id(self) -> str:
        return f"{self.cluster}|{self.principal}"  # what AWS answers for its Ref

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EKS::AccessEntry"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "AccessEntryArn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[override]
                                        account_id: str, region_name: str, **kwargs: Any) -> _EksAccessEntry:
        props = cloudformation_json["Properties"]
        cluster = eks_backends[account_id][region_name].describe_cluster(props["ClusterName"])
        entry = _add_entry(cluster, props["PrincipalArn"], props.get("Type") or "STANDARD", props.get("Username"),
                           list(props.get("KubernetesGroups") or []),
                           {t["Key"]: t["Value"] for t in props.get("Tags") or []},
                           list(props.get("AccessPolicies") or []))
        return cls(cluster.name, entry["principalArn"], entry["accessEntryArn"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: _EksAccessEntry, new_resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> _EksAccessEntry:
        """The policies, groups, user name and tags in place (UpdateAccessEntry, Associate/DisassociateAccessPolicy);
        another cluster, principal or type is a new entry, the old one then deleted (replacement)."""
        props = cloudformation_json["Properties"]
        cluster = eks_backends[account_id][region_name].describe_cluster(props["ClusterName"])
        entry = _entries(cluster).get(original_resource.principal) if cluster.name == original_resource.cluster \
            else None
        if entry is None or entry["principalArn"] != props["PrincipalArn"] \
                or entry["type"] != (props.get("Type") or "STANDARD"):
            new = cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id,
                                                      region_name)
            original_resource.delete(account_id, region_name)
            return new
        entry["policies"] = _policies(list(props.get("AccessPolicies") or []), entry["policies"])
        entry["kubernetesGroups"] = list(props.get("KubernetesGroups") or [])
        entry["username"] = props.get("Username") or entry["username"]
        entry["tags"] = {t["Key"]: t["Value"] for t in props.get("Tags") or []}
        entry["modifiedAt"] = utcnow()
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        """DeleteAccessEntry; nothing when the cluster is gone (EKS deletes a cluster's entries with it)."""
        cluster = eks_backends[account_id][region_name].clusters.get(self.cluster)
        if cluster is not None:
            _entries(cluster).pop(self.principal, None)


def _cluster_entry(response: EKSResponse) -> tuple[Cluster, dict[str, Any]]:
    cluster = response.eks_backend.describe_cluster(response._get_param("name"))
    principal = unquote(str(response._get_param("principalArn") or ""))
    entry = _entries(cluster).get(principal)
    if entry is None:
        raise ResourceNotFoundException(clusterName=cluster.name, nodegroupName=None, fargateProfileName=None,
                                        addonName=None, message="The specified principalArn could not be found. "
                                                                "You can view your available access entries with "
                                                                "'list-access-entries'.")
    return cluster, entry


def _list_access_entries(self: EKSResponse) -> ActionResult:
    cluster = self.eks_backend.describe_cluster(self._get_param("name"))
    wanted = self._get_param("associatedPolicyArn")
    found = sorted(p for p, e in _entries(cluster).items() if not wanted or wanted in e["policies"])
    return ActionResult({"accessEntries": found})


def _describe_access_entry(self: EKSResponse) -> ActionResult:
    _cluster, entry = _cluster_entry(self)
    return ActionResult({"accessEntry": {k: v for k, v in entry.items() if k != "policies"}})


def _list_associated_access_policies(self: EKSResponse) -> ActionResult:
    cluster, entry = _cluster_entry(self)
    return ActionResult({"clusterName": cluster.name, "principalArn": entry["principalArn"],
                         "associatedAccessPolicies": [entry["policies"][arn] for arn in sorted(entry["policies"])]})


EKSResponse.list_access_entries = _list_access_entries  # type: ignore[attr-defined]
EKSResponse.describe_access_entry = _describe_access_entry  # type: ignore[attr-defined]
EKSResponse.list_associated_access_policies = _list_associated_access_policies  # type: ignore[attr-defined]
# A principal's ARN has a slash, sent as %2F (which the server decodes before routing): `.+`, as moto's tag paths.
eks_urls.url_paths.update({
    "{0}/clusters/(?P<name>[^/]+)/access-entries$": eks_urls.response.dispatch,
    "{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)$": eks_urls.response.dispatch,
})


_ONE_AT_A_TIME = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialized(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
    credential = re.search(r"Credential=([^/,\s]+)/", str(environ.get("HTTP_AUTHORIZATION") or ""))
    with _ONE_AT_A_TIME:
        _CALLER.access_key = credential.group(1) if credential else None
        try:
            return _dispatch(self, environ, start_response)
        finally:
            _CALLER.access_key = None


DomainDispatcherApplication.__call__ = _serialized  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
