"""The web console at `/` and the API docs at /docs and /redoc, all served from the package.

The console is static HTML, CSS and ES modules in `app/static/console`; it signs in and talks to
the same public API as every other client. Swagger UI and ReDoc load their vendored assets from
`app/static/vendor` (see its VENDOR.md), so the docs work without internet access.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.api.mounting import mount

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_URL = "/static"
_SWAGGER = f"{STATIC_URL}/vendor/swagger-ui"
_REDOC = f"{STATIC_URL}/vendor/redoc"
# The console loads only its own files and talks only to this server.
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The docs pages: FastAPI's inline start-up script, the vendored bundles, ReDoc's search worker
# (a blob), and nothing from elsewhere (ReDoc's footer logo would load from its CDN).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


async def console() -> FileResponse:
    """The console's single page; it routes by URL fragment (#/chat, #/approvals, ...)."""
    return FileResponse(
        STATIC_DIR / "console" / "index.html",
        headers={"Content-Security-Policy": CONSOLE_CSP, "Cache-Control": "no-cache"},
    )


async def console_alias() -> RedirectResponse:
    """Where people guess the console is."""
    return RedirectResponse("/")


def install_console(app: FastAPI) -> None:
    """Serve the console, its static files and offline API docs on `app`.

    The app must be created with `docs_url=None, redoc_url=None` so these pages replace
    FastAPI's CDN-based ones.
    """
    title = app.title
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = "/docs/oauth2-redirect"
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/", console, methods=["GET"])
    router.add_api_route("/console", console_alias, methods=["GET"])

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        """Swagger UI with its assets from the package."""
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{_SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{_SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{_SWAGGER}/favicon-32x32.png",
            oauth2_redirect_url=oauth2_redirect,
            # No badge from the public validator service: nothing is fetched from elsewhere.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @router.get(oauth2_redirect)
    async def swagger_ui_redirect() -> HTMLResponse:
        """Swagger UI's OAuth2 redirect page."""
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        """ReDoc with its bundle from the package and system fonts."""
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{_REDOC}/redoc.standalone.js",
            redoc_favicon_url=f"{_SWAGGER}/favicon-32x32.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    mount(app, router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
