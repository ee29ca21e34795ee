"""The web page: the playground at /ui, the pool dashboard at /ui/pool, their files, and the dashboard's feed.

    GET /                 307 to /ui
    GET /ui, /ui/pool     the page (one HTML file; the script shows the view the path names)
    GET /ui/static/NAME   its scripts and styles, gzipped when the browser takes gzip
    GET /ui/events        SSE for the dashboard (an API or admin key): pool events and `stats` every interval

The page and its files load without a key, and hold no data: everything the page shows comes from
the API with the key the user typed (sent as a bearer token), so keys guard the data exactly as for
any other client. Every answer carries a Content-Security-Policy that lets only this origin's own
scripts run (no inline script, no eval) and lets the page talk to this origin alone: a model's
answer that smuggles HTML in can neither run nor load anything. Only included when `ui` is on.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from warmserve.api import pool_feed
from warmserve.api.deps import Pools
from warmserve.api.errors import ERROR_RESPONSES, SSE_EVENT
from warmserve.api.security import ApiKeys
from warmserve.api.streaming import SSE_HEADERS
from warmserve.errors import Unauthorized
from warmserve.ui import Asset

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
UI_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated by ETag: a new release's page is never stale
}


def require_viewer_key(request: Request) -> None:
    """The feed takes an API key, or an admin key: an operator holding only the latter sees the pool too."""
    authorization, api_key = request.headers.get("authorization"), request.headers.get("x-api-key")
    api_keys: ApiKeys = request.app.state.api_keys
    admin_keys: ApiKeys = request.app.state.admin_keys
    try:
        api_keys.check(authorization, api_key)
    except Unauthorized:
        if not admin_keys.required:
            raise
        admin_keys.check(authorization)


def _serve(request: Request, name: str) -> Response:
    assets: dict[str, Asset] = request.app.state.ui_assets
    asset = assets.get(name)
    if asset is None:
        raise HTTPException(404, f"No such file of the web page: {name}")
    headers = {**UI_HEADERS, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(asset.gzipped, media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=307)


@router.api_route("/ui", methods=["GET", "HEAD"])
@router.api_route("/ui/", methods=["GET", "HEAD"])
@router.api_route("/ui/pool", methods=["GET", "HEAD"])
async def page(request: Request) -> Response:
    return _serve(request, "index.html")


@router.api_route("/ui/static/{name:path}", methods=["GET", "HEAD"])
async def static(name: str, request: Request) -> Response:
    return _serve(request, name)


@router.get(
    "/ui/events",
    dependencies=[Depends(require_viewer_key)],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}}, **ERROR_RESPONSES},
)
async def events(
    request: Request,
    pools: Pools,
    interval_s: float = Query(1.0, ge=0.2, le=60, description="Seconds between `stats` events."),
) -> StreamingResponse:
    """`snapshot`, then every `state` and `worker` event, and a `stats` event every `interval_s`."""
    return StreamingResponse(
        pool_feed.feed(pools, request.app.state.metrics, interval_s),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **UI_HEADERS, "Cache-Control": "no-cache"},
    )
