"""One JSON shape for every error the API answers: {"error": {"code", "message", "details"?}}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorDetail(BaseModel):
    """One problem of a refused request: which field, and what is wrong with it."""

    field: str = Field(examples=["id"])
    problem: str = Field(examples=["String should have at most 200 characters"])


class ErrorBody(BaseModel):
    code: str = Field(
        description="Stable, for programs: unauthorized, payload_too_large, invalid_json, "
        "invalid_event, too_deep, event_too_large, refused_by_temporal, intake_unavailable, "
        "invalid_request, not_found, method_not_allowed, ...",
        examples=["unauthorized"],
    )
    message: str = Field(description="For people; may change.", examples=["missing header"])
    details: list[ErrorDetail] | None = Field(
        default=None, description="Per field, when the request had invalid fields."
    )


class ErrorAnswer(BaseModel):
    """The one shape of every error answer."""

    error: ErrorBody


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        return error_response(422, "invalid_request", "the request is not valid", details)
