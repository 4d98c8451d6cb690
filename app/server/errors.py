"""OpenAI-shaped errors: ``{"error": {"message", "type", "param", "code"}}`` with the right status.

Every validation error becomes a 400 naming the field (FastAPI's own answer is a 422 in its
own shape); an unknown path is a 404; nothing that failed is ever answered with a 200.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error"}


class ApiError(Exception):
    """An error the client caused (or must hear about), answered in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "server_error")

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def error_body(message: str, *, type: str, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_bytes(status: int, message: str, *, param: str | None = None,
                code: str | None = None) -> bytes:
    """The JSON body of an error answered by middleware (before FastAPI's handlers)."""
    body = error_body(message, type=_TYPES.get(status, "server_error"), param=param, code=code)
    return json.dumps(body).encode()


def invalid(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "tuple"})


def _field_name(loc: tuple[Any, ...]) -> str | None:
    # ("body", "messages", 0, "content") → "messages[0].content"
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        elif not str(part).isidentifier() or part in _TYPE_TAGS:
            continue  # pydantic's union branch labels such as "str" or "list[str]"
        else:
            name += f".{part}" if name else str(part)
    return name or None


def validation_error(exc: RequestValidationError) -> ApiError:
    errors = list(exc.errors())
    if not errors:
        return ApiError(400, "The request is invalid.", code="invalid_request")
    first = errors[0]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return ApiError(400, "The request body is not valid JSON.", code="invalid_json")
    param = _field_name(tuple(first.get("loc", ())))
    if param is None:
        return ApiError(400, "The request body must be a JSON object.", code="invalid_request")
    if kind == "missing":
        return ApiError(400, f"Missing required parameter: '{param}'.", param=param,
                        code="missing_required_parameter")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return ApiError(400, f"Invalid '{param}': {message}.".replace("..", "."), param=param,
                    code="invalid_value")


class ClientGone(Exception):
    """The client closed the connection before its reply was ready: nobody reads an answer."""


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientGone)
    async def _gone(_request: Request, _exc: ClientGone) -> Response:
        return Response(status_code=499)  # nginx's "client closed request", for the log

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc).response()

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error = ApiError(404, f"Unknown request URL: {request.method} {request.url.path}. "
                                  "See /v1/models for what this server offers.",
                             code="unknown_url")
        elif exc.status_code == 405:
            error = ApiError(405, f"{request.method} is not allowed on {request.url.path}.",
                             code="method_not_allowed")
        else:
            error = ApiError(exc.status_code, str(exc.detail))
        return error.response()

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("server error")
        return ApiError(500, f"Hearth hit an internal error: {type(exc).__name__}.",
                        code="internal_error").response()
