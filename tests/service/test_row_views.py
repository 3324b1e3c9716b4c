"""The fast read paths' JSON comes from kit.views, derived from the response schemas: every field of a
schema must be in the view's output, in the schema's order, and a field with no column must stop the
view from building (so a field added to a schema cannot be forgotten by a listing)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

from sailplane.kit.schemas import ApiModel, Timestamp
from sailplane.kit.views import RowView, row_view, wire_keys
from sailplane.tenancy.teams.reads import TEAM_VIEW
from sailplane.tenancy.teams.schemas import TeamItem
from sailplane.workloads.jobs.schemas import JobRunView, RunResults
from sailplane.workloads.runs.models import JobRun
from sailplane.workloads.runs.reads import RUN_VIEW


def _keys(model: type[BaseModel], shown: dict[str, Any]) -> None:
    """`shown` has exactly the model's keys, in order, nested models included."""
    assert list(shown) == wire_keys(model)
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            _keys(info.annotation, shown[info.alias or name])


@pytest.mark.parametrize(("view", "model"), [(RUN_VIEW, JobRunView), (TEAM_VIEW, TeamItem)])
def test_views_show_every_schema_field(view: RowView, model: type[BaseModel]) -> None:
    row = [f"v{i}" for i in range(len(view.columns))]
    shown = view.render(row)
    _keys(model, shown)
    assert len(view.columns) == len(view.names)
    assert sorted(_leaves(shown)) == sorted(row)  # each column shown once


def _leaves(doc: dict[str, Any]) -> list[Any]:
    return [x for v in doc.values() for x in (_leaves(v) if isinstance(v, dict) else [v])]


def test_a_field_without_a_column_stops_the_view() -> None:
    class Extended(JobRunView):
        not_a_column: str

    with pytest.raises(LookupError, match="not_a_column"):
        row_view(Extended, JobRun.__table__, nested={"results": RunResults})


def test_objects_render_like_rows() -> None:
    class Small(ApiModel):
        id: str
        created_at: Timestamp
        finished_at: Timestamp | None

    view = row_view(Small, JobRun.__table__)
    run = SimpleNamespace(id="r1", created_at=datetime(2026, 4, 6, 12, 34, 56, 789999, tzinfo=UTC), finished_at=None)
    assert view.of(run) == {"id": "r1", "createdAt": "2026-04-06T12:34:56.789Z", "finishedAt": None}
