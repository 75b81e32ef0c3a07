"""`ReadRoute`: a FastAPI route class for the hottest read endpoint, whose handler does what FastAPI's
generic one did for it, without its per-request generality (docs/DECISIONS.md, "Hot reads on the
driver").

FastAPI's handler inspects the endpoint's parameters on every request: for a query model, each
field's annotation (is it a sequence? a JSON field? which aliases?) before validating, and for the
`reading` dependency a generator wrapped in an exit stack and an anyio cancel scope. For
`get-sessions-optimized` that was about a fifth of the request's CPU in the API process. A
`ReadRoute` is declared like any route (so the OpenAPI document is FastAPI's own, from the same
signature), but its handler is fixed: the `reading` dependency first (a bad token is a 401 before
any query error, as before), then the query model, validated as FastAPI validates it (a sequence
field takes every repeated value, an absent or empty one is left to its default, errors located
under `query`), then the endpoint. Its endpoint takes exactly `request`, `params` (a query model)
and `reader`.
"""

from __future__ import annotations

import contextlib
import inspect
import types
import typing
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from therapy_scheduler.auth.principal import reading

_open_reading = contextlib.asynccontextmanager(reading)


def _is_sequence(annotation: Any) -> bool:
    """Whether FastAPI reads this query field as a list (every repeated value)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_sequence(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(a) for a in typing.get_args(annotation) if a is not type(None))
    return origin in (list, set, tuple, frozenset) or annotation in (list, set, tuple, frozenset)


class QueryModel:
    """Reads a query model from a query string as FastAPI does for `Annotated[model, Query()]`."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self._fields = [
            (field.alias or name, _is_sequence(field.annotation))
            for name, field in model.model_fields.items()
        ]
        self._names = {name for name, _ in self._fields}

    def parse(self, query_string: bytes) -> Any:
        """The model of a raw query string (the ASGI scope's), decoded as Starlette's `QueryParams`
        decodes it: a sequence field takes every value of its name, any other field the last one."""
        given: dict[str, list[str]] = {}
        for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            same = given.get(key)
            if same is None:
                given[key] = [value]
            else:
                same.append(value)
        values: dict[str, Any] = {}
        for name, many in self._fields:
            items = given.get(name)
            if items:
                values[name] = items if many else items[-1]
        # The other parameters too, for the model's own `extra` rule (FastAPI passes them on).
        for key, extra in given.items():
            if key not in self._names:
                values[key] = extra[0] if len(extra) == 1 else extra
        try:
            return self.model.model_validate(values, from_attributes=True)
        except ValidationError as exc:
            errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None


class ReadRoute(APIRoute):
    """A route whose endpoint is `(request, params: Annotated[Model, Query()], reader:
    Annotated[Reading, Depends(reading, scope="function")])`, served by a fixed handler (see the
    module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        signature = inspect.signature(endpoint, eval_str=True)
        if list(signature.parameters) != ["request", "params", "reader"]:
            raise TypeError(
                f"{endpoint.__name__}: a ReadRoute endpoint takes request, params, reader"
            )
        model = typing.get_args(signature.parameters["params"].annotation)[0]
        query = QueryModel(model)

        async def handler(request: Request) -> Response:
            async with _open_reading(request) as reader:
                params = query.parse(request.scope["query_string"])
                response: Response = await endpoint(request=request, params=params, reader=reader)
                return response

        return handler
