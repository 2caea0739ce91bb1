"""The interactive API docs (``/docs``) served by the service itself, so they work on a network without the
internet and under the same Content-Security-Policy as every other page (this service's own files only, no inline
script or style: ``security_headers.HTML_POLICY``).

FastAPI's own ``/docs`` loads Swagger UI from a CDN and starts it with an inline script, so offline (or under that
policy) it is a blank page. ``serve_offline_docs`` replaces it: Swagger UI's bundle, stylesheet and icon come from
the ``fastapi-offline`` package (MIT; Swagger UI 5), and Swagger UI is started by ``static/swagger-ui-init.js``.
ReDoc (``/redoc``) is not offered: it injects its styles inline, which the policy refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from services.runtime.html_templates import package_templates
from services.runtime.problems import problem_response
from services.runtime.security_headers import HTML_POLICY

ASSET_CACHE = "max-age=3600"  # the files change only with the installed packages


@dataclass(frozen=True)
class DocsAsset:
    content: bytes
    media_type: str


def docs_assets() -> dict[str, DocsAsset]:
    """The files the docs page loads, by the name it loads them under."""
    swagger_ui = files("fastapi_offline").joinpath("static")
    ours = files("services.runtime").joinpath("static")
    return {
        "swagger-ui-bundle.js": DocsAsset(swagger_ui.joinpath("swagger-ui-bundle.js").read_bytes(), "text/javascript"),
        "swagger-ui.css": DocsAsset(swagger_ui.joinpath("swagger-ui.css").read_bytes(), "text/css"),
        "favicon.png": DocsAsset(swagger_ui.joinpath("favicon.png").read_bytes(), "image/png"),
        "swagger-ui-init.js": DocsAsset(ours.joinpath("swagger-ui-init.js").read_bytes(), "text/javascript"),
    }


def serve_offline_docs(app: FastAPI, docs_url: str = "/docs") -> None:
    """Serve Swagger UI for ``app``'s OpenAPI document at ``docs_url``, its files under ``<docs_url>/assets/``,
    none of them from another host. Removes FastAPI's CDN-loaded pages (``/docs``, ``/docs/oauth2-redirect``,
    ``/redoc``) first; call it right after creating the app. An app without an OpenAPI document gets no docs."""
    cdn_pages = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    app.router.routes[:] = [route for route in app.router.routes if getattr(route, "path", None) not in cdn_pages]
    app.docs_url = app.redoc_url = app.swagger_ui_oauth2_redirect_url = None
    if app.openapi_url is None:
        return
    app.docs_url = docs_url
    openapi_url, assets_url = app.openapi_url, f"{docs_url}/assets"
    assets = docs_assets()
    page = package_templates("services.runtime").get_template("swagger_ui.html")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        html = page.render(title=app.title, assets=root + assets_url, openapi_url=root + openapi_url)
        # set here, not only by the SecurityHeaders middleware: a service without it (the SMS sandbox) is held too
        return HTMLResponse(html, headers={"Content-Security-Policy": HTML_POLICY})

    @app.get(assets_url + "/{name}", include_in_schema=False)
    async def swagger_ui_asset(name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            return problem_response(404, "no such file")
        return Response(asset.content, media_type=asset.media_type, headers={"Cache-Control": ASSET_CACHE})
