"""API keys and CORS. Keys are compared in constant time; health probes stay open."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

from warmserve.config import ServerSettings
from warmserve.errors import Unauthorized


def presented_keys(authorization: str | None, api_key: str | None) -> tuple[str, str]:
    """The Bearer token of the Authorization header (OpenAI's clients) and the x-api-key header
    (Anthropic's), stripped; "" for each one absent."""
    scheme, _, token = (authorization or "").partition(" ")
    return (token.strip() if scheme.lower() == "bearer" else "", (api_key or "").strip())


def key_owner(authorization: str | None, api_key: str | None) -> str:
    """Who owns what a request stores: the sha256 hex of the key it presented, "" when it presented none.

    Only the hash is kept, never the key. A request may carry both headers and pass the check on
    either one, so when they differ both go into the hash: two clients that share a stray Bearer
    token but hold different x-api-keys must not share their stored responses.
    """
    keys = list(dict.fromkeys(key for key in presented_keys(authorization, api_key) if key))
    return hashlib.sha256("\n".join(keys).encode()).hexdigest() if keys else ""


class ApiKeys:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [key.encode() for key in keys]

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None, api_key: str | None = None) -> None:
        """`authorization`: the Authorization header (OpenAI's clients); `api_key`: x-api-key (Anthropic's)."""
        if not self._keys:
            return
        presented = [key.encode() for key in presented_keys(authorization, api_key)]
        # Compare against every key, so the time taken says nothing about which one nearly matched.
        matched = False
        for key in self._keys:
            for candidate in presented:
                matched |= hmac.compare_digest(candidate, key)
        if not matched:
            how = "Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
            raise Unauthorized(
                f"Incorrect or missing API key. {how}" if any(presented) else f"You didn't provide an API key. {how}"
            )


def require_api_key(request: Request) -> None:
    """Dependency of every /v1 route."""
    keys: ApiKeys = request.app.state.api_keys
    keys.check(request.headers.get("authorization"), request.headers.get("x-api-key"))


def require_admin_key(request: Request) -> None:
    """Dependency of every /admin route: the admin keys when set, else the API keys."""
    keys: ApiKeys = request.app.state.admin_keys
    keys.check(request.headers.get("authorization"))


def install_cors(app: FastAPI, settings: ServerSettings) -> None:
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "x-api-key", "anthropic-version", "anthropic-beta"],
        )
