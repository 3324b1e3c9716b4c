"""HTTP routes for /workloads/notebooks (the `notebooks` seed's records and sharing) and
/workloads/teams/{team}/notebooks; plus, beyond the seed, the notebook's marimo source:

- GET/PUT `/workloads/notebooks/{notebook}/source`: download (text/x-python, as a `.py` attachment) and
  replace (the request body is the file, UTF-8, at most 1 MiB);
- `/workloads/notebooks/{notebook}/source/revisions` (newest first), `.../revisions/{revision}`
  (download) and `.../revisions/{revision}/restore`.

Start, stop and ping (`startNotebook`, `stopNotebook`, `pingNotebook`) hand the work to this node's notebook
controller (`controller.py`); open (`POST /workloads/notebooks/{notebook}/open`) gives the single-use URL of
the notebook proxy (`opening.py`, `proxy.py`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from sailplane.iam.auth.deps import CurrentPrincipal, Db
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import Limit
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.tenancy.teams.schemas import TeamItem, TeamView
from sailplane.workloads.notebooks import opening, service
from sailplane.workloads.notebooks.controller import NotebookController
from sailplane.workloads.notebooks.models import Notebook
from sailplane.workloads.notebooks.schemas import (
    MAX_SOURCE_BYTES,
    CreateNotebookRequest,
    NotebookDescription,
    NotebookIncluded,
    NotebookList,
    NotebookOpenUrl,
    NotebookRef,
    NotebookRevisionList,
    NotebookRevisionView,
    NotebookSourceInfo,
    NotebookTeamLink,
    NotebookTeamLinks,
    NotebookTeamsRequest,
    NotebookView,
    UpdateNotebookRequest,
)
from sailplane.workloads.router import config_view

router = APIRouter(route_class=JsonRoute, prefix="/workloads", tags=["notebooks"])
Ctx = Annotated[RequestContext, Depends(request_context)]
NotebookId = Annotated[str, Path(pattern=ID_PATTERN, description="A notebook ID.")]
TeamId = Annotated[str, Path(pattern=ID_PATTERN, description="The team ID.")]
RevisionId = Annotated[str, Path(pattern=ID_PATTERN, description="A revision of the notebook's source.")]

PYTHON = "text/x-python"
_DISPOSITION = {"Content-Disposition": {"description": 'attachment; filename="<notebook name>.py"',
                                        "schema": {"type": "string"}}}
_PY_FILE: dict[int | str, dict[str, Any]] = {
    200: {"content": {PYTHON: {"schema": {"type": "string"}}}, "headers": _DISPOSITION,
          "description": "The marimo notebook file (UTF-8)."}}
_PY_BODY = {"requestBody": {"required": True, "description": f"The marimo `.py` file: UTF-8 text without NUL, at "
                                                             f"most {MAX_SOURCE_BYTES} bytes (else 413).",
                            "content": {PYTHON: {"schema": {"type": "string"}}}}}


# --- views --------------------------------------------------------------------------------------

def notebook_view(n: Notebook) -> NotebookView:
    return NotebookView(
        id=n.id, member_id=n.member_id, workload_config_id=n.workload_config_id, name=n.name,
        description=n.description, status=n.status, status_message=n.status_message,
        idle_timeout_seconds=n.idle_timeout_seconds, detached_timeout_seconds=n.detached_timeout_seconds,
        last_active_at=n.last_active_at, session_id=n.session_id, created_at=n.created_at, created_by=n.created_by,
        updated_at=n.updated_at, updated_by=n.updated_by,
    )


def _parts(listing: service.NotebookListing) -> tuple[list[NotebookRef], NotebookIncluded]:
    refs = [NotebookRef(notebook_id=n.id, team_ids=listing.team_ids.get(n.id, []),
                        workload_config_id=n.workload_config_id) for n in listing.notebooks]
    included = NotebookIncluded(
        notebooks=[notebook_view(n) for n in listing.notebooks],
        teams=[TeamItem(team=TeamView.model_validate(t), member_count=c) for t, c in listing.teams],
        workload_configs=[config_view(c) for c in listing.configs],
    )
    return refs, included


def notebook_list(listing: service.NotebookListing) -> NotebookList:
    items, included = _parts(listing)
    return NotebookList(total=listing.total, items=items, included=included)


def notebook_description(listing: service.NotebookListing) -> NotebookDescription:
    items, included = _parts(listing)
    return NotebookDescription(item=items[0], included=included)


def _source_info(notebook: Notebook, revision_id: str | None) -> NotebookSourceInfo:
    return NotebookSourceInfo(notebook_id=notebook.id, size=len(notebook.source.encode()),
                              updated_at=notebook.source_updated_at, updated_by=notebook.source_updated_by,
                              revision_id=revision_id)


def _python_file(text: str, name: str) -> Response:
    filename = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:100] or "notebook"
    return Response(text.encode(), media_type=f"{PYTHON}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.py"'})


async def _raw_body(request: Request) -> bytes:
    """The uploaded file as sent (read here so the endpoint itself stays a sync, thread-pooled one)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def get_controller(request: Request) -> NotebookController | None:
    """This node's notebook controller (None: the server runs no compute)."""
    found: NotebookController | None = getattr(request.app.state, "notebooks", None)
    return found


Controller = Annotated[NotebookController | None, Depends(get_controller)]
ACTIVITY_RECORDED = {"message": "Activity recorded."}


# --- listings -----------------------------------------------------------------------------------

@router.get("/notebooks", operation_id="listNotebooks", response_model=NotebookList)
def list_notebooks(db: Db, principal: CurrentPrincipal, limit: Limit = 100) -> NotebookList:
    """Notebooks the caller owns or that are shared with their teams (organization admins: all), newest first."""
    return notebook_list(service.list_notebooks(db, principal, limit))


@router.get("/teams/{team}/notebooks", operation_id="listTeamNotebooks", response_model=NotebookList)
def list_team_notebooks(team: TeamId, db: Db, principal: CurrentPrincipal, limit: Limit = 100) -> NotebookList:
    """Notebooks shared with the team (that the caller may see), newest first."""
    return notebook_list(service.list_for_team(db, principal, team, limit))


# --- notebooks ----------------------------------------------------------------------------------

@router.post("/notebooks", operation_id="createNotebook", status_code=201, response_model=NotebookDescription)
def create_notebook(body: CreateNotebookRequest, db: Db, principal: CurrentPrincipal,
                    ctx: Ctx) -> NotebookDescription:
    """A marimo notebook, `stopped`, whose source starts from a template with a Spark session on Sail."""
    return notebook_description(service.create_notebook(db, principal, body, ctx))


@router.get("/notebooks/{notebook}", operation_id="describeNotebook", response_model=NotebookDescription)
def describe_notebook(notebook: NotebookId, db: Db, principal: CurrentPrincipal) -> NotebookDescription:
    """The notebook with its team IDs, the teams and the workload config the caller can see."""
    return notebook_description(service.describe(db, principal, notebook))


@router.patch("/notebooks/{notebook}", operation_id="updateNotebook", response_model=NotebookView)
def update_notebook(notebook: NotebookId, body: UpdateNotebookRequest, db: Db, principal: CurrentPrincipal,
                    ctx: Ctx) -> NotebookView:
    """Name, description, timeouts; the workload config only while stopped (409 otherwise)."""
    return notebook_view(service.update_notebook(db, principal, notebook, body, ctx))


@router.delete("/notebooks/{notebook}", operation_id="deleteNotebook", response_model=Message)
def delete_notebook(notebook: NotebookId, db: Db, principal: CurrentPrincipal, ctx: Ctx,
                    controller: Controller) -> dict[str, str]:
    """Remove the notebook with its team links and source revisions; a live notebook is stopped first."""
    service.delete_notebook(db, principal, notebook, ctx, controller.wait_at_rest if controller else None)
    return DONE


@router.post("/notebooks/{notebook}/start", operation_id="startNotebook", response_model=NotebookView)
def start_notebook(notebook: NotebookId, db: Db, principal: CurrentPrincipal, ctx: Ctx,
                   controller: Controller) -> NotebookView:
    """Start a stopped or failed notebook: `starting` now; its Sail session and marimo server come up in the
    background (`running`, or `failed` with why). 409 in any other state."""
    node = controller.node if controller is not None else None
    wake = controller.wake if controller is not None else None
    return notebook_view(service.start_notebook(db, principal, notebook, ctx, node, wake))


@router.post("/notebooks/{notebook}/stop", operation_id="stopNotebook", response_model=NotebookView)
def stop_notebook(notebook: NotebookId, db: Db, principal: CurrentPrincipal, ctx: Ctx,
                  controller: Controller) -> NotebookView:
    """Stop a starting, running, idle or detached notebook: `stopping` now; its source is saved (a revision
    when marimo changed it), its servers stopped, then `stopped`. 409 in any other state."""
    return notebook_view(service.stop_notebook(db, principal, notebook, ctx,
                                               controller.wake if controller is not None else None))


@router.post("/notebooks/{notebook}/ping", operation_id="pingNotebook", response_model=Message)
def ping_notebook(notebook: NotebookId, db: Db, principal: CurrentPrincipal) -> dict[str, str]:
    """Record that the caller has the notebook open (restarts its idle clock; idle → running). Only while it is
    running, idle or detached (409 otherwise)."""
    service.ping_notebook(db, principal, notebook)
    return ACTIVITY_RECORDED


@router.post("/notebooks/{notebook}/open", operation_id="openNotebook", response_model=NotebookOpenUrl)
def open_notebook(notebook: NotebookId, request: Request, db: Db, principal: CurrentPrincipal) -> NotebookOpenUrl:
    """A URL that lets the caller's browser into the running notebook (as an iframe's `src`): valid for
    5 minutes, once. Its token is a JWT verifiable with `/.well-known/jwks.json` (audience
    `sailplane-notebook`); visiting it sets a cookie for this notebook only and redirects to it. The
    notebook's owner edits it, every other member who sees it reads it. 409 unless the notebook is running,
    idle or detached (naming its state)."""
    url = opening.open_url(db, principal, notebook, request.app.state.signing_keys,
                           request.app.state.settings.public_url)
    return NotebookOpenUrl(url=url)


# --- teams --------------------------------------------------------------------------------------

@router.get("/notebooks/{notebook}/teams", operation_id="listNotebookTeams", response_model=NotebookTeamLinks)
def list_notebook_teams(notebook: NotebookId, db: Db, principal: CurrentPrincipal,
                        limit: Limit = 100) -> NotebookTeamLinks:
    """The teams the notebook is shared with."""
    links = service.list_team_links(db, principal, notebook, limit)
    return NotebookTeamLinks(items=[NotebookTeamLink.model_validate(x) for x in links])


@router.post("/notebooks/{notebook}/teams", operation_id="addNotebookTeams", response_model=NotebookTeamLinks)
def add_notebook_teams(notebook: NotebookId, body: NotebookTeamsRequest, db: Db, principal: CurrentPrincipal,
                       ctx: Ctx) -> NotebookTeamLinks:
    """Share the notebook with more of the caller's teams (idempotent); their members may view and open it."""
    links = service.add_teams(db, principal, notebook, body.team_ids, ctx)
    return NotebookTeamLinks(items=[NotebookTeamLink.model_validate(x) for x in links])


@router.delete("/notebooks/{notebook}/teams/{team}", operation_id="removeNotebookTeam", response_model=Message)
def remove_notebook_team(notebook: NotebookId, team: TeamId, db: Db, principal: CurrentPrincipal,
                         ctx: Ctx) -> dict[str, str]:
    """Stop sharing the notebook with a team (404 when it is not shared with it)."""
    service.remove_team(db, principal, notebook, team, ctx)
    return DONE


# --- source (beyond the seed) -------------------------------------------------------------------

@router.get("/notebooks/{notebook}/source", operation_id="getNotebookSource", response_class=Response,
            responses=_PY_FILE)
def get_notebook_source(notebook: NotebookId, db: Db, principal: CurrentPrincipal) -> Response:
    """Download the notebook's marimo `.py` file."""
    found = service.get_source(db, principal, notebook)
    return _python_file(found.source, found.name)


@router.put("/notebooks/{notebook}/source", operation_id="replaceNotebookSource",
            response_model=NotebookSourceInfo, openapi_extra=_PY_BODY)
def replace_notebook_source(notebook: NotebookId, body: RawBody, db: Db, principal: CurrentPrincipal,
                            ctx: Ctx) -> NotebookSourceInfo:
    """Replace the source with the uploaded `.py` file; the previous source is kept as a revision."""
    found, revision_id = service.replace_source(db, principal, notebook, body, ctx)
    return _source_info(found, revision_id)


@router.get("/notebooks/{notebook}/source/revisions", operation_id="listNotebookSourceRevisions",
            response_model=NotebookRevisionList)
def list_notebook_source_revisions(notebook: NotebookId, db: Db, principal: CurrentPrincipal,
                                   limit: Limit = 100) -> NotebookRevisionList:
    """Previous sources, newest first (the 50 most recent are kept)."""
    total, rows = service.list_revisions(db, principal, notebook, limit)
    return NotebookRevisionList(total=total, items=[NotebookRevisionView.model_validate(r) for r in rows])


@router.get("/notebooks/{notebook}/source/revisions/{revision}", operation_id="getNotebookSourceRevision",
            response_class=Response, responses=_PY_FILE)
def get_notebook_source_revision(notebook: NotebookId, revision: RevisionId, db: Db,
                                 principal: CurrentPrincipal) -> Response:
    """Download a previous source as a `.py` file."""
    found = service.get_revision(db, principal, notebook, revision)
    name = service.get_notebook(db, principal, notebook).name
    return _python_file(found.source, f"{name}-{found.id}")


@router.post("/notebooks/{notebook}/source/revisions/{revision}/restore",
             operation_id="restoreNotebookSourceRevision", response_model=NotebookSourceInfo)
def restore_notebook_source_revision(notebook: NotebookId, revision: RevisionId, db: Db,
                                     principal: CurrentPrincipal, ctx: Ctx) -> NotebookSourceInfo:
    """Make a previous source the current one; the source it replaces becomes a revision too."""
    found, revision_id = service.restore_revision(db, principal, notebook, revision, ctx)
    return _source_info(found, revision_id)
