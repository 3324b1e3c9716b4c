"""Every AWS call Sailplane makes, through boto3, and the one place its clients are made.

Our own credentials are boto3's default chain (environment, instance profile, SSO): the principal Sailplane runs
as. They are used for one thing, STS AssumeRole into a customer's connection role with that connection's external
ID; every other call runs with the temporary credentials it returns. Nothing long-lived of a customer's is stored.
`Settings.aws_endpoint_url` points every client elsewhere (the moto server in tests; None: real AWS).

Failures become `CloudError` (its message names the AWS error code and says what was being done, never a
parameter: the external ID is one).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sailplane.config import Settings

T = TypeVar("T")

# botocore logs every request's parameters at DEBUG (AssumeRole's ExternalId among them): its loggers stay at INFO
# or above whatever the root logger's level, so turning on debug logging never writes a connection's external ID.
for _name in ("botocore", "boto3", "urllib3"):
    if logging.getLogger(_name).level < logging.INFO:  # NOTSET (0) too: it would follow the root logger
        logging.getLogger(_name).setLevel(logging.INFO)

SESSION_SECONDS = 900  # the shortest STS session: each use assumes the role again (but see REUSE_SECONDS)
# How long an operation's steps reuse the role's credentials (in memory only, never stored) before assuming it again:
# a step is a few calls, an operation a handful of steps; assuming the role for each one doubled an operation's calls
# (bench/operations_bench.py). Well inside the session; a revoked trust still stops the next step within a minute.
REUSE_SECONDS = 60.0
_K8S_AWS_ID = "x-k8s-aws-id"  # the header that names the cluster in an EKS token's signed request
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId"}


class CloudError(Exception):
    """An AWS call failed: `code` is AWS's error code (or a transport failure's class name)."""

    def __init__(self, doing: str, code: str, message: str) -> None:
        super().__init__(f"{doing} failed: {code}: {message}")
        self.doing = doing
        self.code = code
        self.detail = message

    @property
    def denied(self) -> bool:
        return self.code in ACCESS_DENIED


# boto3 and botocore are imported on first use, not with the app: ~10 MB of every server's idle memory that only
# infrastructure calls need (bench/api_bench.py's idle RSS; tests/infra/test_lazy_boto3.py keeps it so).


@functools.cache
def _client_config() -> Any:
    """Timeouts and retries of every client: a request waits for AWS at most about this long, never indefinitely."""
    from botocore.config import Config

    return Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})


def _call(doing: str, fn: Callable[[], T]) -> T:
    """`fn()`, AWS's refusals and failures as `CloudError`: an answer botocore cannot read (a proxy's page, a
    service's error in another protocol) too, which is AWS failing, not us."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        return fn()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CloudError(doing, str(error.get("Code") or "ClientError"),
                         str(error.get("Message") or "no message")[:500]) from None
    except (BotoCoreError, ResponseParserError) as exc:
        raise CloudError(doing, type(exc).__name__, str(exc)[:500]) from None


@dataclass(frozen=True)
class AssumedRole:
    """Temporary credentials of a connection's role, and what STS says they are."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    arn: str
    account_id: str


@functools.cache
def known_regions() -> frozenset[str]:
    """The regions botocore knows (its bundled endpoint data; no call): what a connection's region may be. Read once
    per process: a session of its own loads the endpoint data, most of createNetwork's time (and CPU) otherwise."""
    import boto3

    return frozenset(boto3.session.Session().get_available_regions("ec2"))


class Aws:
    """Clients for our own principal (STS only) and for assumed roles."""

    def __init__(self, settings: Settings) -> None:
        self.endpoint_url = settings.aws_endpoint_url
        self.region = settings.aws_region
        self._principal = settings.aws_principal_arn
        self._lock = threading.Lock()
        self._session: Any = None  # made on first use (boto3 is imported lazily); see _client
        self._session_lock = threading.Lock()
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._roles: dict[tuple[str, str, str], tuple[float, AssumedRole]] = {}

    def _client(self, service: str, region: str, role: AssumedRole | None = None) -> Any:
        keys: dict[str, str] = {}
        if role is not None:
            keys = {"aws_access_key_id": role.access_key_id, "aws_secret_access_key": role.secret_access_key,
                    "aws_session_token": role.session_token}
        # One session for every client: it reads each service's JSON model once, where a session per client read it
        # again for every client (a few made per operation step: most of an operation's time against a fast
        # endpoint, bench/operations_bench.py). Sessions are not thread-safe, so clients are made under a lock; the
        # clients are, and each still gets the role's keys of its own.
        with self._session_lock:
            if self._session is None:
                import boto3

                self._session = boto3.session.Session()
            key = (service, region, keys.get("aws_access_key_id", ""))
            client = self._clients.get(key)
            if client is None:  # a role's reused credentials (REUSE_SECONDS) reuse its clients too
                if len(self._clients) >= 64:
                    self._clients.clear()
                client = self._clients[key] = self._session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url, config=_client_config(), **keys)
            return client

    def principal_arn(self) -> str:
        """The IAM ARN connection roles trust: configured, or what STS says our credentials are (an assumed-role
        session ARN is turned into its role's ARN, which is what a trust policy names)."""
        with self._lock:
            if self._principal is None:
                found = _call("Finding Sailplane's own AWS identity (sts:GetCallerIdentity)",
                              lambda: self._client("sts", self.region).get_caller_identity())
                self._principal = _role_of_session(str(found["Arn"]))
            return self._principal

    def assume(self, role_arn: str, external_id: str, session_name: str, *, reuse: bool = False) -> AssumedRole:
        """AssumeRole with the connection's external ID (moto accepts any: see tests/infra). With `reuse`, the
        credentials this process got for the same role, ID and session in the last REUSE_SECONDS (operation steps);
        without, always assumed now (verification, requests: they check the role as it is)."""
        key = (role_arn, external_id, session_name)
        now = time.monotonic()
        if reuse:
            with self._lock:
                self._roles = {k: v for k, v in self._roles.items() if v[0] > now}
                held = self._roles.get(key)
            if held is not None:
                return held[1]
        role = self._assume(role_arn, external_id, session_name)
        with self._lock:
            self._roles[key] = (now + REUSE_SECONDS, role)
        return role

    def _assume(self, role_arn: str, external_id: str, session_name: str) -> AssumedRole:
        sts = self._client("sts", self.region)
        found = _call(f"Assuming {role_arn} (sts:AssumeRole)", lambda: sts.assume_role(
            RoleArn=role_arn, RoleSessionName=session_name[:64], ExternalId=external_id,
            DurationSeconds=SESSION_SECONDS))
        creds = found["Credentials"]
        role = AssumedRole(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"],
                           str(found["AssumedRoleUser"]["Arn"]), "")
        me = _call("Checking the assumed role (sts:GetCallerIdentity)",
                   lambda: self._client("sts", self.region, role).get_caller_identity())
        return AssumedRole(role.access_key_id, role.secret_access_key, role.session_token, str(me["Arn"]),
                           str(me["Account"]))

    # --- through an assumed role ------------------------------------------------------------------------

    def get_role(self, role: AssumedRole, role_name: str) -> dict[str, Any]:
        iam = self._client("iam", self.region, role)
        found: dict[str, Any] = _call(f"Reading the role {role_name} (iam:GetRole)",
                                      lambda: iam.get_role(RoleName=role_name))["Role"]
        return found

    def describe_stack(self, role: AssumedRole, region: str, stack: str) -> dict[str, Any] | None:
        """The stack (by name or ARN), or None when there is none (or it was deleted)."""
        cfn = self._client("cloudformation", region, role)
        try:
            stacks = _call(f"Reading the stack {stack} (cloudformation:DescribeStacks)",
                           lambda: cfn.describe_stacks(StackName=stack))["Stacks"]
        except CloudError as exc:
            if exc.code == "ValidationError" and "does not exist" in exc.detail:
                return None
            raise
        # A deleted stack is still described by its ARN (DELETE_COMPLETE), for 90 days: it is gone all the same.
        live = [s for s in stacks if s.get("StackStatus") != "DELETE_COMPLETE"]
        return live[0] if live else None

    def update_stack(self, role: AssumedRole, region: str, stack: str, template: dict[str, Any],
                     parameters: dict[str, str | None], token: str) -> bool:
        """UpdateStack; False when CloudFormation says there is nothing to update. A parameter given as None keeps
        its deployed value (UsePreviousValue: the external ID never travels). `token` is the client request
        token: the same step run again is the same request to CloudFormation (moto ignores it)."""
        cfn = self._client("cloudformation", region, role)
        try:
            _call(f"Updating the stack {stack} (cloudformation:UpdateStack)", lambda: cfn.update_stack(
                StackName=stack, TemplateBody=json.dumps(template), ClientRequestToken=token,
                Capabilities=["CAPABILITY_NAMED_IAM"],
                Parameters=[{"ParameterKey": k, "UsePreviousValue": True} if v is None
                            else {"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]))
        except CloudError as exc:
            if exc.code == "ValidationError" and "No updates are to be performed" in exc.detail:
                return False
            raise
        return True

    def create_stack(self, role: AssumedRole, region: str, stack: str, template: dict[str, Any], token: str,
                     tags: dict[str, str]) -> str:
        """CreateStack; its StackId. `token` is the client request token (the same step run again is the same
        request to CloudFormation; moto ignores it, so callers look for the stack by name first). A cluster's stack
        makes named IAM roles, which CloudFormation refuses without CAPABILITY_NAMED_IAM (moto does not check)."""
        cfn = self._client("cloudformation", region, role)
        found = _call(f"Creating the stack {stack} (cloudformation:CreateStack)", lambda: cfn.create_stack(
            StackName=stack, TemplateBody=json.dumps(template), ClientRequestToken=token,
            Capabilities=["CAPABILITY_NAMED_IAM"], OnFailure="ROLLBACK",
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()]))
        return str(found["StackId"])

    def delete_stack(self, role: AssumedRole, region: str, stack: str, token: str) -> None:
        cfn = self._client("cloudformation", region, role)
        _call(f"Deleting the stack {stack} (cloudformation:DeleteStack)",
              lambda: cfn.delete_stack(StackName=stack, ClientRequestToken=token))

    def availability_zones(self, role: AssumedRole, region: str) -> list[str]:
        """The region's available zones (not Local or Wavelength zones), sorted by name."""
        ec2 = self._client("ec2", region, role)
        found = _call(f"Listing availability zones in {region} (ec2:DescribeAvailabilityZones)",
                      lambda: ec2.describe_availability_zones(
                          Filters=[{"Name": "state", "Values": ["available"]},
                                   {"Name": "zone-type", "Values": ["availability-zone"]}]))
        return sorted(str(z["ZoneName"]) for z in found["AvailabilityZones"])

    def vpc(self, role: AssumedRole, region: str, vpc_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """(the VPC, its subnets), or None when the region has no such VPC."""
        ec2 = self._client("ec2", region, role)
        try:
            vpcs = _call(f"Reading the VPC {vpc_id} (ec2:DescribeVpcs)",
                         lambda: ec2.describe_vpcs(VpcIds=[vpc_id]))["Vpcs"]
        except CloudError as exc:
            if exc.code in ("InvalidVpcID.NotFound", "InvalidVpcID.Malformed"):
                return None
            raise
        if not vpcs:
            return None
        subnets = _call(f"Listing the subnets of {vpc_id} (ec2:DescribeSubnets)", lambda: ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]))["Subnets"]
        return dict(vpcs[0]), list(subnets)

    def regions(self, role: AssumedRole) -> list[dict[str, Any]]:
        ec2 = self._client("ec2", self.region, role)
        found: list[dict[str, Any]] = _call("Listing regions (ec2:DescribeRegions)",
                                            lambda: ec2.describe_regions(AllRegions=False))["Regions"]
        return found

    def instance_types(self, role: AssumedRole, region: str) -> Iterator[dict[str, Any]]:
        ec2 = self._client("ec2", region, role)
        token: str | None = None
        doing = f"Listing instance types in {region} (ec2:DescribeInstanceTypes)"
        while True:
            page = _call(doing, functools.partial(ec2.describe_instance_types, MaxResults=100,
                                                  **({"NextToken": token} if token else {})))
            yield from page.get("InstanceTypes", [])
            token = page.get("NextToken")
            if not token:
                return

    def networks(self, role: AssumedRole, region: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(VPCs, subnets) of the region."""
        ec2 = self._client("ec2", region, role)
        vpcs = _call(f"Listing VPCs in {region} (ec2:DescribeVpcs)", lambda: ec2.describe_vpcs())["Vpcs"]
        subnets = _call(f"Listing subnets in {region} (ec2:DescribeSubnets)",
                        lambda: ec2.describe_subnets())["Subnets"]
        return list(vpcs), list(subnets)

    def eks_cluster(self, role: AssumedRole, region: str, name: str) -> dict[str, Any] | None:
        """DescribeCluster; None when the region has no such cluster."""
        eks = self._client("eks", region, role)
        try:
            found: dict[str, Any] = _call(f"Reading the EKS cluster {name} (eks:DescribeCluster)",
                                          lambda: eks.describe_cluster(name=name))["cluster"]
        except CloudError as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            raise
        return found

    def node_groups(self, role: AssumedRole, region: str, cluster: str) -> list[dict[str, Any]]:
        """The cluster's managed node groups (DescribeNodegroup of each), by name."""
        eks = self._client("eks", region, role)
        names = _call(f"Listing the node groups of {cluster} (eks:ListNodegroups)",
                      lambda: eks.list_nodegroups(clusterName=cluster))["nodegroups"]
        return [_call(f"Reading the node group {name} (eks:DescribeNodegroup)", functools.partial(
            eks.describe_nodegroup, clusterName=cluster, nodegroupName=name))["nodegroup"] for name in sorted(names)]

    def eks_token(self, role: AssumedRole, region: str, cluster: str) -> str:
        """A bearer token for the cluster's Kubernetes API, made as `aws eks get-token` makes it: a GetCallerIdentity
        request presigned with the role's credentials (valid 60 s) whose signed `x-k8s-aws-id` header names the
        cluster, which the cluster's authenticator sends to STS to learn who is calling. No call is made here."""
        sts = self._client("sts", region, role)

        def keep_cluster(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            if _K8S_AWS_ID in params:
                context[_K8S_AWS_ID] = params.pop(_K8S_AWS_ID)

        def sign_cluster(request: Any, **_: Any) -> None:
            if _K8S_AWS_ID in request.context:
                request.headers[_K8S_AWS_ID] = request.context[_K8S_AWS_ID]

        sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", keep_cluster)
        sts.meta.events.register("before-sign.sts.GetCallerIdentity", sign_cluster)
        url = _call("Signing a token for the cluster (sts:GetCallerIdentity)", lambda: sts.generate_presigned_url(
            "get_caller_identity", Params={_K8S_AWS_ID: cluster}, ExpiresIn=60, HttpMethod="GET"))
        return "k8s-aws-v1." + base64.urlsafe_b64encode(str(url).encode()).decode().rstrip("=")

    def metric_data(self, role: AssumedRole, region: str, queries: list[dict[str, Any]], start: datetime,
                    end: datetime) -> dict[str, list[tuple[datetime, float]]]:
        """GetMetricData (every page): each query's (timestamp, value) points, oldest first, by query ID."""
        cloudwatch = self._client("cloudwatch", region, role)
        found: dict[str, list[tuple[datetime, float]]] = {str(q["Id"]): [] for q in queries}
        token: str | None = None
        while True:
            page = _call(f"Reading metrics in {region} (cloudwatch:GetMetricData)", functools.partial(
                cloudwatch.get_metric_data, MetricDataQueries=queries, StartTime=start, EndTime=end,
                ScanBy="TimestampAscending", **({"NextToken": token} if token else {})))
            for result in page.get("MetricDataResults", []):
                found.setdefault(str(result["Id"]), []).extend(zip(result.get("Timestamps", []),
                                                                   (float(v) for v in result.get("Values", [])),
                                                                   strict=False))
            token = page.get("NextToken")
            if not token:
                return {key: sorted(points) for key, points in found.items()}


def _role_of_session(arn: str) -> str:
    """arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION → arn:aws:iam::ACCOUNT:role/NAME; other ARNs as they are."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        name = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{name}"
    return arn
