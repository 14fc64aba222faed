"""Where ``/`` and ``/ui`` lead: the workflows of the caller's project."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse

from tideflow.web.auth import DEFAULT_PROJECT, Access, current_principal

router = APIRouter()


@router.get("/")
@router.get("/ui")
@router.get("/ui/")
def home(access: Annotated[Access, Depends(current_principal)]) -> RedirectResponse:
    """To the workflows of the token's project (the default project without a token)."""
    project = access.project or DEFAULT_PROJECT
    return RedirectResponse(f"/ui/{project}/workflows", status_code=307)
