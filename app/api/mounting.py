"""Putting routers' routes on the app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


def mount(app: FastAPI, *routers: APIRouter) -> None:
    """Add the routers' routes to the app as they are.

    `include_router` makes FastAPI analyse every route's dependencies a second time, at the
    first request (about 0.4 s of a start with MAI's hundred-odd routes). MAI's routers carry
    their whole path prefix and nothing an include would add (tags, dependencies, responses),
    so their routes serve unchanged.
    """
    for router in routers:
        app.router.routes.extend(router.routes)
