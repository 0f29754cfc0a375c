"""The API reference pages, Swagger UI at /docs and ReDoc at /redoc, served by the app itself
(the assets come from the fastapi-offline package), so they work offline and under the same
strict Content-Security-Policy as every other page: their one inline script carries a nonce."""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from markupsafe import escape

ASSETS = "/docs-assets"
# Styles the ReDoc bundle inserts as it loads, before it is given the nonce: its scroll bars'
# stylesheet and an empty one. A newer bundle changes the first hash; the browser test says so.
REDOC_STYLE_HASHES = ("'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc=' "
                      "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='")


def nonced(csp: str, nonce: str, styles: str = "") -> str:
    """`csp` with this page's nonce allowed for scripts and style elements (and `styles`)."""
    allowed = f"'self' 'nonce-{nonce}'"
    return (csp.replace("script-src 'self'", f"script-src {allowed}")
            .replace("style-src 'self'", f"style-src {allowed} {styles}".rstrip()))


def _js(value: Any) -> str:
    # JSON inside a script element: '<' escaped, so no value can end the element.
    return json.dumps(value).replace("<", "\\u003c")


def mount(app: FastAPI, csp: str) -> None:
    """Serve /docs, /redoc and their assets under `csp`; make the app with docs_url=None and
    redoc_url=None."""
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def page(request: Request, title: str, assets: list[str], script: str, nonce: str,
             styles: str = "", extra: str = "") -> HTMLResponse:
        tags = "".join(f'<link rel="stylesheet" href="{a}">' if a.endswith(".css")
                       else f'<script src="{a}"></script>' for a in assets)
        root = request.scope.get("root_path", "")
        html = ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{escape(title)}</title>"
                f'<link rel="icon" href="{root}{ASSETS}/favicon.png"></head>'
                f'<body><div id="api-reference"></div>{tags}'
                f'<script nonce="{nonce}">{script}</script></body></html>')
        policy = nonced(csp, nonce, styles) + extra
        return HTMLResponse(html, headers={"content-security-policy": policy})

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        options = {"url": f"{root}{openapi_url}", "dom_id": "#api-reference",
                   "layout": "BaseLayout", "deepLinking": True, "showExtensions": True,
                   "showCommonExtensions": True, **(app.swagger_ui_parameters or {})}
        script = (f"SwaggerUIBundle(Object.assign({_js(options)}, {{presets: "
                  "[SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]}));")
        assets = [f"{root}{ASSETS}/swagger-ui.css", f"{root}{ASSETS}/swagger-ui-bundle.js"]
        return page(request, f"{app.title} - API", assets, script, secrets.token_urlsafe(16))

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        nonce = secrets.token_urlsafe(16)
        # ReDoc styles itself with <style> elements; given the nonce, it puts it on them.
        script = (f"Redoc.init({_js(root + openapi_url)}, {_js({'nonce': nonce})}, "
                  "document.getElementById('api-reference'));")
        # Its search runs in a worker it makes from a blob: URL.
        return page(request, f"{app.title} - API reference",
                    [f"{root}{ASSETS}/redoc.standalone.js"], script, nonce,
                    styles=REDOC_STYLE_HASHES, extra="; worker-src 'self' blob:")
