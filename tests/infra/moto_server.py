"""The moto server of the infrastructure tests (`python -m tests.infra.moto_server -H … -p …`), with the one
CloudFormation delete moto 5.1 lacks and a network's stack needs.

moto's `AWS::EC2::RouteTable` has no CloudFormation delete: deleting a stack leaves its route tables behind, so
the stack's VPC can never be deleted (DependencyViolation), unlike in AWS, where DeleteStack removes a route table
with its associations. This adds that delete (disassociate, then delete the table: what AWS does) and changes
nothing else of moto.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models import ec2_backends
from moto.ec2.models.route_tables import RouteTable
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

if __name__ == "__main__":
    main()
