"""HTTP routes (being built)."""

from __future__ import annotations

from fastapi import APIRouter

org_router = APIRouter()
public_router = APIRouter()
