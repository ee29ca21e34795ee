"""The HTTP layer: thin routers that validate, hand to the pool and shape the answer."""

from warmserve.api.app import create_app

__all__ = ["create_app"]
