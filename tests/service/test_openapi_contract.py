"""The published OpenAPI document says what the server does: every error status with the real error shape,
the bearer scheme, the organization header's pattern, sortBy enums, typed responses, true nullability."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import RequestModel
from tests.support.server import LiveServer

PUBLIC = {"signup", "login", "completeMfaLogin", "requestLoginCode", "verifyLoginCode", "requestPasswordReset",
          "resetPassword", "verifyEmail", "describeInvitation", "startSsoLogin", "finishSsoLogin",
          "exchangeSsoCode"}
SORTED = {"listTeams": ["name", "email"], "searchMembers": ["name", "email"], "listTeamMembers": ["name", "email"],
          "listInvitations": ["createdAt", "email"],
          "listMyCatalogs": ["name", "updatedAt"], "listMyQueries": ["updatedAt", "name"],
          "listMyJobs": ["createdAt", "jobKey"], "listJobs": ["jobKey", "createdAt"],
          "listOrganizationRoles": ["name"], "listTeamRoles": ["name"],
          "listMyClusters": ["name"]}


@pytest.fixture(scope="module")
def doc(server: LiveServer) -> dict[str, Any]:
    return httpx.get(f"{server.url}/api/v1/openapi.json").json()  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()
            if path.startswith("/api/v1/")]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_operation_documents_its_errors_in_the_one_shape(doc: dict[str, Any]) -> None:
    shape = doc["components"]["schemas"]["ErrorResponse"]
    assert shape["required"] == ["error"]
    body = resolve(doc, shape["properties"]["error"])
    assert body["required"] == ["code", "message", "errorType", "details"]
    details = resolve(doc, body["properties"]["details"])
    assert set(details["required"]) == {"retryable", "retryAfter", "fieldErrors", "requestId", "causedBy"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for _path, method, op in operations(doc):
        name = op["operationId"]
        responses = op["responses"]
        errors = {int(s) for s in responses if int(s) >= 400}
        assert {400, 422, 503} <= errors, name
        for status in errors:
            assert responses[str(status)]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"}, (name, status)
        if name not in PUBLIC:
            assert {401, 403, 404} <= errors, name
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        if "requestBody" in op:
            assert 413 in errors, name
        if method in ("post", "put", "patch", "delete"):
            assert {409, 507} <= errors, name
    statuses = {op["operationId"]: set(op["responses"]) for _p, _m, op in operations(doc)}
    assert "429" in statuses["login"] and "429" in statuses["verifyLoginCode"]
    assert "502" in statuses["startSsoLogin"] and "503" in statuses["createSession"]


def test_the_bearer_scheme_is_declared_where_a_token_is_taken(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "A login token (signup, login, SSO) or a service "
                                                          "account API key."}
    for _path, _method, op in operations(doc):
        name = op["operationId"]
        if name in PUBLIC:
            assert op["security"] == [], name
        elif name == "acceptInvitation":
            assert op["security"] == [{"bearerAuth": []}, {}]
        else:
            assert op["security"] == [{"bearerAuth": []}], name


def test_parameters_are_strings_or_absent_and_the_organization_header_has_its_pattern(doc: dict[str, Any]) -> None:
    seen = 0
    for _path, _method, op in operations(doc):
        for param in op.get("parameters", []):
            schema = param["schema"]
            assert "anyOf" not in schema and schema.get("type") != "null", (op["operationId"], param)
            if param["name"] == "LakeSail-Organization-Id":
                assert param["in"] == "header" and schema == {"type": "string", "pattern": ID_PATTERN}
                seen += 1
            if param["name"] == "page":
                assert schema["maximum"] == 1_000_000
    assert seen > 100


def test_sort_fields_are_enums_with_their_defaults(doc: dict[str, Any]) -> None:
    found = {}
    for _path, _method, op in operations(doc):
        for param in op.get("parameters", []):
            if param["name"] == "sortBy":
                found[op["operationId"]] = param["schema"]
    assert set(found) == set(SORTED)
    for name, allowed in SORTED.items():
        assert found[name]["enum"] == allowed and found[name]["default"] == allowed[0], name


def _free_form(doc: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]) -> list[str]:
    """Paths of objects without declared properties (beyond string maps) reachable from a response schema."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        seen.add(name)
        return _free_form(doc, doc["components"]["schemas"][name], where, seen)
    found = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _free_form(doc, option, where, seen)
    if schema.get("type") == "array":
        found += _free_form(doc, schema.get("items", {}), f"{where}[]", seen)
    if schema.get("type") == "object" or "properties" in schema:
        for prop, sub in schema.get("properties", {}).items():
            found += _free_form(doc, sub, f"{where}.{prop}", seen)
        extra = schema.get("additionalProperties")
        if not schema.get("properties") and not schema.get("patternProperties") \
                and (extra is None or extra is True or extra == {}):
            found.append(where)
    return found


def test_responses_have_typed_models_where_the_contract_has_structure(doc: dict[str, Any]) -> None:
    free = set()
    for _path, _method, op in operations(doc):
        for status, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema and not status.startswith("4"):
                free |= {f"{op['operationId']}{p}" for p in _free_form(doc, schema, "", set())}
    # The CloudFormation template (AWS's format, not ours) is free-form as a whole.
    free -= {"downloadConnectionTemplate"}
    free_fields = {p.rsplit(".", 1)[-1] for p in free}
    # What is free-form by design: the caller's own preferences, a catalog provider's settings (validated per
    # provider), and an audit event's details.
    assert free_fields <= {"preferences", "providerConfig", "details"}, sorted(free)
    schemas = doc["components"]["schemas"]
    assert schemas["WorkloadConfigView"]["properties"]["config"] == {
        "$ref": "#/components/schemas/WorkloadConfigBodyView"}
    included = schemas["ClusterIncluded"]["properties"]
    for name, model in (("connections", "ConnectionView"), ("networks", "NetworkView"),
                        ("externalClusters", "ExternalClusterView")):
        assert included[name]["items"] == {"$ref": f"#/components/schemas/{model}"}


def test_nullable_request_fields_are_exactly_those_that_take_null(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]

    def nullable(model: str, field: str) -> bool:
        prop = schemas[model]["properties"][field]
        return any(o.get("type") == "null" for o in prop.get("anyOf", [])) or prop.get("type") == "null"

    refusing = {"UpdateTeamRequest": ["name", "defaultRoleId"], "UpdateOrganizationRequest": ["name", "requireMfa"],
                "UpdateServiceAccountRequest": ["name"], "UpdateCatalogRequest": ["name", "providerConfig"],
                "UpdateQueryRequest": ["name", "sql"], "UpdateJobRequest": ["jobKey", "status"],
                "VersionFields": ["clusterId", "config"], "UpdateMemberRequest": ["status"]}
    clearing = {"UpdateTeamRequest": ["description", "email"], "UpdateOrganizationRequest": ["description"],
                "UpdateServiceAccountRequest": ["description"], "UpdateCatalogRequest": ["description"],
                "UpdateQueryRequest": ["description", "catalogId", "schema"], "UpdateJobRequest": ["description"],
                "VersionFields": ["description", "timeoutSeconds", "sourceConfig", "cronExpression"],
                "UpdateMemberRequest": ["displayName"], "RotateSecretRequest": ["clientSecret"]}
    for model, fields in refusing.items():
        for field in fields:
            assert not nullable(model, field), (model, field)
            assert "default" not in schemas[model]["properties"][field], (model, field)
    for model, fields in clearing.items():
        for field in fields:
            assert nullable(model, field), (model, field)


def test_every_route_decodes_through_the_input_boundary(server: LiveServer) -> None:
    routes = [c.original_route for c in iter_route_contexts(server.app.routes)
              if isinstance(c.original_route, APIRoute) and c.path_format.startswith("/api/")]
    assert len(routes) > 140
    for route in routes:
        assert isinstance(route, JsonRoute), route.path
        body = route.body_field
        if body is not None:
            annotation = body.field_info.annotation
            options = getattr(annotation, "__args__", (annotation,))
            assert any(isinstance(o, type) and issubclass(o, RequestModel) for o in options), route.path
