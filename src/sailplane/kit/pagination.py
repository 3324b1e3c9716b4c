"""The two pagination styles of the contract: limit+marker, and page+limit+sortBy."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Query
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sailplane.kit.errors import ApiError
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.input import MAX_PAGE

Limit = Annotated[int, Query(ge=0, le=100, description="The maximum number of items to list.")]
Marker = Annotated[
    str | None,
    Query(pattern=ID_PATTERN, description="The pagination token returned from the previous list operation."),
]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="The page number to retrieve (1-indexed).")]
SortDirection = Annotated[Literal["asc", "desc"], Query(description="The direction to sort.")]
SortDirectionParam = Annotated[Literal["asc", "desc"], Query(alias="sortDirection",
                                                            description="The direction to sort.")]


@dataclass(frozen=True)
class MarkerPage:
    limit: int = 100
    marker: str | None = None


async def marker_params(limit: Limit = 100, marker: Marker = None) -> MarkerPage:
    return MarkerPage(limit=limit, marker=marker)


def apply_marker(stmt: Select, id_column, page: MarkerPage, *, newest_first: bool = False) -> Select:  # type: ignore[type-arg,no-untyped-def]
    """IDs are time-ordered, so 'after the marker' is 'ID greater than the marker' (or less, newest first)."""
    if page.marker:
        stmt = stmt.where(id_column < page.marker if newest_first else id_column > page.marker)
    order = id_column.desc() if newest_first else id_column
    return stmt.order_by(order).limit(page.limit + 1)


def split_marker(rows: list, page: MarkerPage, key=lambda r: r.id) -> tuple[list, str | None]:  # type: ignore[no-untyped-def,type-arg]
    """Fetch limit+1 rows; when there are more, the marker is the last ID returned."""
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        return rows, (key(rows[-1]) if rows else None)
    return rows, None


@dataclass(frozen=True)
class PageRequest:
    page: int
    limit: int
    sort_by: str
    direction: str

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def page_request(page: int, limit: int, sort_by: str | None, direction: str, allowed: tuple[str, ...]) -> PageRequest:
    chosen = sort_by or allowed[0]
    if chosen not in allowed:
        raise ApiError(
            400,
            "invalid_sort_field",
            f"sortBy must be one of: {', '.join(allowed)}.",
            field_errors={"sortBy": f"must be one of: {', '.join(allowed)}"},
        )
    return PageRequest(page=page, limit=limit, sort_by=chosen, direction=direction)


def paging(allowed: tuple[str, ...], description: str | None = None) -> Callable[..., Any]:
    """The dependency of a page+limit listing: `page`, `limit`, `sortBy` (one of `allowed`, published as an
    enum; the first is the default) and `sortDirection`.

    A sortBy outside `allowed` is a 400 `invalid_sort_field` (kit.errors)."""
    text = description or f"The field to sort by: {' or '.join(allowed)}."
    sort_type = Annotated[Literal[allowed], Query(alias="sortBy", description=text)]  # type: ignore[valid-type]
    params = [
        inspect.Parameter("page", inspect.Parameter.KEYWORD_ONLY, default=1, annotation=Page),
        inspect.Parameter("limit", inspect.Parameter.KEYWORD_ONLY, default=100, annotation=Limit),
        inspect.Parameter("sort_by", inspect.Parameter.KEYWORD_ONLY, default=allowed[0], annotation=sort_type),
        inspect.Parameter("sort_direction", inspect.Parameter.KEYWORD_ONLY, default="asc",
                          annotation=SortDirectionParam),
    ]

    async def page_params(page: int = 1, limit: int = 100, sort_by: str | None = None,
                          sort_direction: str = "asc") -> PageRequest:
        return page_request(page, limit, sort_by, sort_direction, allowed)

    page_params.__signature__ = inspect.Signature(params, return_annotation=PageRequest)  # type: ignore[attr-defined]
    return page_params


def count(db: Session, stmt: Select) -> int:  # type: ignore[type-arg]
    return db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
