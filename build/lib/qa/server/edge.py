"""The app's edge: the Host names it answers to, and which sites may send it state changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.config import Settings
from qa.server.admin import is_loopback

LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
DEFAULT_PORTS = {"http": "80", "https": "443"}

Refuse = Callable[[Scope, int, str, str], Awaitable[Response]]


def _name(host: str) -> str:
    """A host name as the allow-list holds it: lower case, IPv6 in brackets."""
    host = host.strip().lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def allowed_hosts(settings: Settings) -> set[str] | None:
    """The host names requests may name, or None for any."""
    hosts = settings.allowed_hosts
    if hosts is None:
        return set(LOOPBACK_HOSTS) if is_loopback(settings.host) else None
    return None if "*" in hosts else {_name(h) for h in hosts}


def host_name(host: str) -> str:
    """The name in a Host header without its port: '[::1]:8000' is '[::1]'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.partition(":")[0]


def _netloc(origin: str) -> str:
    """The host and port of an origin, the scheme's default port left out."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return ""
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    if not host:
        return ""
    if port is None or str(port) == DEFAULT_PORTS.get(parts.scheme):
        return host
    return f"{host}:{port}"


def same_origin(origin: str, host: str) -> bool:
    """Whether an Origin header names the site the Host header names."""
    host = host.strip().lower()
    default = DEFAULT_PORTS.get(urlsplit(origin.strip().lower()).scheme)
    if default and host.endswith(f":{default}"):
        host = host[: -len(default) - 1]
    return bool(host) and _netloc(origin) == host


def cross_site(headers: Headers, allowed_origins: set[str]) -> bool:
    """Whether a request comes from another site's page (and none the operator allowed).

    Browsers send Origin on every cross-origin POST; when it is missing, Sec-Fetch-Site tells.
    Requests with neither (curl, API clients, servers) are not from a browser page at all.
    """
    origin = headers.get("origin")
    if origin is not None:
        if origin.strip().rstrip("/").lower() in allowed_origins:
            return False
        return origin == "null" or not same_origin(origin, headers.get("host", ""))
    # 'same-site' is another port or subdomain of this site: another origin all the same.
    return headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site")


class Edge:
    """ASGI middleware: refuses requests naming a host not on the allow-list (DNS rebinding)
    with 400, and state-changing requests from other sites' pages (CSRF) with 403."""

    def __init__(self, app: ASGIApp, settings: Settings, refuse: Refuse):
        self.app = app
        self.hosts = allowed_hosts(settings)
        self.origins = {o.strip().rstrip("/").lower() for o in settings.cors_origins}
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = None
        if self.hosts is not None and host_name(headers.get("host", "")) not in self.hosts:
            shown = headers.get("host", "")[:100]
            problem = (400, "bad_host", f"this server does not answer to the host {shown!r}; "
                       "list it in QA_ALLOWED_HOSTS to allow it")
        elif scope["method"] in UNSAFE_METHODS and cross_site(headers, self.origins):
            problem = (403, "forbidden", "only this site's own pages may send this request; "
                       "list other sites in QA_CORS_ORIGINS to allow them")
        if problem is not None:
            response = await self.refuse(scope, *problem)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
