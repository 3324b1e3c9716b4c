"""The baseline: a bare FastAPI app answering a JSON document shaped like ours, no database, no auth."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()

TEAM = {
    "team": {
        "id": "01JB00000000000000AB", "organizationId": "01JB00000000000000AA", "name": "Team 000",
        "description": "A benchmark team", "email": None, "createdAt": "2026-11-23T00:00:00.000Z",
        "createdBy": "01JB00000000000000AC", "updatedAt": "2026-11-23T00:00:00.000Z",
        "updatedBy": "01JB00000000000000AC", "defaultRoleId": "TEAMDEVELOPER",
    },
    "memberCount": 1,
}


@app.get("/healthz")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/team")
def team() -> dict[str, object]:
    return TEAM


@app.get("/teams")
def teams() -> dict[str, object]:
    items = [{**TEAM, "team": {**TEAM["team"], "name": f"Team {i:03}"}} for i in range(100)]  # type: ignore[dict-item]
    return {"total": 100, "items": items}
