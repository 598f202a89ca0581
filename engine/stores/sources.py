"""Configured inbound sources (per org): connector, secrets, path token, mapping and sync cursor."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from memrelay.engine.core.boundedcache import BoundedTTLCache
from memrelay.engine.core.errors import NotFound
from memrelay.engine.core.util import iso, new_id, utcnow
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Source

LOOKUP_TTL_S = 5.0
LOOKUP_CACHE_SIZE = 2_048
TOKEN_HEADER = "X-Memrelay-Token"


class Sources:
    """Org-scoped CRUD of sources; ``lookup`` is the receiver's unauthenticated read by id."""

    def __init__(self, db: Database, *, redact: Callable[[str, dict[str, Any]], dict[str, Any]],
                 token_in_path: Callable[[str], bool]):
        """``redact(connector, config)`` masks a config's secrets as the connector declares them;
        ``token_in_path(connector)`` says whether its webhook URL carries the source's path token."""
        self.db = db
        self.redact = redact
        self.token_in_path = token_in_path
        # known sources only (an unknown id is never cached), bounded per process
        self._cache: BoundedTTLCache[str, Source] = BoundedTTLCache(LOOKUP_CACHE_SIZE, LOOKUP_TTL_S)

    def to_dict(self, src: Source, *, reveal: bool = False) -> dict[str, Any]:
        """A source as the API and CLI show it: config secrets masked, and no token (the path token is a
        credential: anyone holding it can post deliveries). ``reveal`` — creation, or an admin's explicit
        reveal/rotate call — adds the signing secret, the token and the path that carries it."""
        uses_token = self.token_in_path(src.connector)
        out: dict[str, Any] = {
            "id": src.id, "connector": src.connector, "name": src.name, "active": src.active,
            "webhookPath": self.webhook_path(src, with_token=reveal),
            "config": self.redact(src.connector, src.config or {}),
            "hasCustomMapping": bool(src.mapping_yaml), "syncCursor": src.sync_cursor,
            "createdAt": iso(src.created_at), "updatedAt": iso(src.updated_at),
        }
        if uses_token:
            out["tokenHeader"] = TOKEN_HEADER
        if reveal:
            out["secret"] = src.secret
            out["token"] = src.token
        return out

    def webhook_path(self, src: Source, *, with_token: bool = False) -> str:
        """The path providers call; ``with_token`` appends the path token of token-authenticated connectors
        (those may instead send it in the ``X-Memrelay-Token`` header to the bare path)."""
        base = f"/webhooks/{src.connector}/{src.id}"
        return f"{base}/{src.token}" if with_token and self.token_in_path(src.connector) else base

    def reveal(self, org_id: str, source_id: str) -> dict[str, Any]:
        """The source with its secret, token and tokened path (an admin's explicit call)."""
        return self.to_dict(self.get(org_id, source_id), reveal=True)

    def rotate_token(self, org_id: str, source_id: str) -> dict[str, Any]:
        """Replace the path token (the old one stops working at once) and show the new one."""
        with self.db.session() as s:
            src = self._get(s, org_id, source_id)
            src.token = secrets.token_urlsafe(24)
            src.updated_at = utcnow()
            self._cache.pop(source_id)
            return self.to_dict(src, reveal=True)

    def create(self, org_id: str, *, connector: str, name: str = "", secret: str | None = None,
               config: dict[str, Any] | None = None, mapping_yaml: str | None = None) -> dict[str, Any]:
        now = utcnow()
        src = Source(id=new_id("src"), org_id=org_id, connector=connector, name=name, secret=secret,
                     previous_secrets=[], token=secrets.token_urlsafe(24), config=config or {},
                     mapping_yaml=mapping_yaml, sync_cursor={}, active=True, created_at=now, updated_at=now)
        with self.db.session() as s:
            s.add(src)
        return self.to_dict(src, reveal=True)

    def update(self, org_id: str, source_id: str, **changes: Any) -> dict[str, Any]:
        """Change name/config/mapping/active; a new ``secret`` keeps the old one valid for rotation."""
        with self.db.session() as s:
            src = self._get(s, org_id, source_id)
            if changes.get("secret"):
                if src.secret:
                    src.previous_secrets = [src.secret, *src.previous_secrets][:3]
                src.secret = changes["secret"]
            for field in ("name", "config", "mapping_yaml", "active"):
                if changes.get(field) is not None:
                    setattr(src, field, changes[field])
            src.updated_at = utcnow()
            self._cache.pop(source_id)
            return self.to_dict(src)

    def list(self, org_id: str) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return [self.to_dict(x) for x in s.scalars(select(Source).where(Source.org_id == org_id)
                                                         .order_by(Source.created_at))]

    def show(self, org_id: str, source_id: str) -> dict[str, Any]:
        """One source as :meth:`to_dict` renders it."""
        return self.to_dict(self.get(org_id, source_id))

    def get(self, org_id: str, source_id: str) -> Source:
        with self.db.read() as s:
            return self._get(s, org_id, source_id)

    def lookup(self, source_id: str, connector: str | None = None) -> Source:
        """The source a webhook URL names (unknown, inactive or wrong connector → 404).

        Known sources are cached for a few seconds per process (the receiver's hot path; changes apply
        within the TTL); unknown ids are not cached, so random ids cannot grow memory."""
        src = self._cache.get(source_id)
        if src is None:
            with self.db.read() as s:
                src = s.get(Source, source_id)
            if src is not None:
                self._cache.put(source_id, src)
        if src is None or not src.active or (connector is not None and src.connector != connector):
            raise NotFound("unknown webhook source")
        return src

    def save_cursor(self, source_id: str, cursor: dict[str, Any]) -> None:
        with self.db.session() as s:
            src = s.get(Source, source_id)
            if src is not None:
                src.sync_cursor = cursor
                src.updated_at = utcnow()

    def delete(self, org_id: str, source_id: str) -> None:
        with self.db.session() as s:
            s.delete(self._get(s, org_id, source_id))
        self._cache.pop(source_id)

    def forget(self, source_id: str) -> None:
        """Drop a cached lookup (a delivery found the source gone: deleted by another process)."""
        self._cache.pop(source_id)

    def _get(self, s: Any, org_id: str, source_id: str) -> Source:
        src = s.scalar(select(Source).where(Source.org_id == org_id, Source.id == source_id))
        if src is None:
            raise NotFound(f"source {source_id} not found")
        return src
