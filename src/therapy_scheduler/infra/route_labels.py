"""The route template a request was routed to, for the metrics and the access log
(`ServiceMiddleware`, infra/http.py)."""

from __future__ import annotations

import re

from fastapi.routing import iter_route_contexts
from starlette.routing import Router
from starlette.types import Scope

UNMATCHED = "unmatched"


class RouteLabels:
    """The route template a request was routed to, for the metrics and the access log: a path of the
    router's table (`/admin/therapists/{therapist_id}`, `/board/static/{path}`), never a raw path, so
    there are as many labels as routes. `unmatched` only for a path no route or mount matches.

    FastAPI's router names its own routes in `scope["route"]`; one dict lookup turns that into the
    template, include prefix and all. It names neither plain Starlette routes (`/openapi.json`,
    `/docs`, `/redoc`) nor mounts (`/board/static`), nor the route a trailing-slash redirect leads to,
    and nothing is routed yet when a request is refused before the router (413, 415, 429). Only those
    requests are matched against the table, in the router's order and by its rule: the first route
    whose pattern and method match, else the first whose pattern matches (the router's 405), else the
    same path with its trailing slash toggled (the router's redirect)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._table: list[tuple[re.Pattern[str], frozenset[str] | None, str]] | None = None
        self._named: dict[int, str] = {}

    def _build(self) -> list[tuple[re.Pattern[str], frozenset[str] | None, str]]:
        # Built at the first request, when every route is in place: every route and mount in the
        # order the router tries them, included routers expanded with their prefixes (the listing
        # FastAPI makes its OpenAPI document from). A mount has no methods: it matches any.
        table: list[tuple[re.Pattern[str], frozenset[str] | None, str]] = []
        templates: dict[int, set[str]] = {}
        for context in iter_route_contexts(self.router.routes):
            template = context.path_format
            if not template:
                continue
            methods = context.methods
            table.append(
                (context.path_regex, frozenset(methods) if methods is not None else None, template)
            )
            templates.setdefault(id(context.original_route), set()).add(template)
        # A route included twice (two prefixes) is one object with two templates: match it instead.
        self._named = {key: names.pop() for key, names in templates.items() if len(names) == 1}
        self._table = table
        return table

    def __call__(self, scope: Scope, path: str, root_path: str) -> str:
        table = self._table if self._table is not None else self._build()
        route = scope.get("route")
        if route is not None:
            named = self._named.get(id(route))
            if named is not None:
                return named
        method: str = scope["method"]
        route_path = _route_path(path, root_path)
        partial = None
        for pattern, methods, template in table:
            if pattern.match(route_path):
                if methods is None or method in methods:
                    return template
                if partial is None:
                    partial = template
        if partial is not None:
            return partial
        if self.router.redirect_slashes and route_path != "/":
            other = route_path.rstrip("/") if route_path.endswith("/") else route_path + "/"
            for pattern, _, template in table:
                if pattern.match(other):
                    return template
        return UNMATCHED


def _route_path(path: str, root_path: str) -> str:
    """The path the router matches: without the root path the app is served under (Starlette's rule)."""
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path) :] if path[len(root_path)] == "/" else path
