"""Organisations and API keys. Keys are random, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from memrelay.engine.core.boundedcache import BoundedTTLCache
from memrelay.engine.core.errors import BadRequest, Conflict, NotFound, Unauthorized
from memrelay.engine.core.util import new_id, utcnow
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import ApiKey, Org

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "mr_"
_AUTH_CACHE_TTL_S = 2.0
AUTH_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class KeyInfo:
    """What an authenticated request may do."""

    key_id: str
    org_id: str
    org_name: str
    scopes: tuple[str, ...]
    rate_limit_per_minute: int | None

    def allows(self, scope: str) -> bool:
        # admin implies write implies read
        order = {"read": 0, "write": 1, "admin": 2}
        return any(order[s] >= order[scope] for s in self.scopes)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class Tenancy:
    """Org and key management over the SQL store."""

    def __init__(self, db: Database):
        self.db = db
        # valid keys only (an unknown key is never cached), bounded per process
        self._cache: BoundedTTLCache[str, KeyInfo] = BoundedTTLCache(AUTH_CACHE_SIZE, _AUTH_CACHE_TTL_S)

    # --- orgs --------------------------------------------------------------------------------
    def create_org(self, name: str) -> Org:
        name = name.strip()
        if not name:
            raise BadRequest("organisation name must not be empty")
        with self.db.session() as s:
            if s.scalar(select(Org).where(Org.name == name)):
                raise Conflict(f"organisation {name!r} already exists")
            org = Org(id=new_id("org"), name=name, settings={}, created_at=utcnow())
            s.add(org)
        from memrelay.engine.stores.collections import (
            seed_starter_schema,  # local: collections depends on tenancy-free core
        )

        seed_starter_schema(self.db, org.id)
        return org

    def get_or_create_org(self, name: str) -> Org:
        with self.db.read() as s:
            org = s.scalar(select(Org).where(Org.name == name))
        return org or self.create_org(name)

    def org_by_name(self, name: str) -> Org:
        with self.db.read() as s:
            org = s.scalar(select(Org).where(Org.name == name))
        if org is None:
            raise NotFound(f"no organisation named {name!r}")
        return org

    # --- keys --------------------------------------------------------------------------------
    def create_key(self, org_id: str, *, scopes: list[str] | tuple[str, ...] = ("read", "write"),
                   name: str = "", rate_limit_per_minute: int | None = None) -> tuple[str, ApiKey]:
        """Create a key; returns the plaintext (shown once) and the stored row."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise BadRequest(f"scopes must be a non-empty subset of {list(SCOPES)}", details={"invalid": bad})
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            id=new_id("key"), org_id=org_id, name=name, prefix=plaintext[:10], key_hash=hash_key(plaintext),
            scopes=list(dict.fromkeys(scopes)), rate_limit_per_minute=rate_limit_per_minute, created_at=utcnow(),
        )
        with self.db.session() as s:
            if s.get(Org, org_id) is None:
                raise NotFound(f"organisation {org_id} not found")
            s.add(row)
        return plaintext, row

    def list_keys(self, org_id: str | None = None) -> list[tuple[ApiKey, str]]:
        """Keys with their org name; ``org_id=None`` is the operator's (CLI) view."""
        with self.db.read() as s:
            q = select(ApiKey, Org.name).join(Org, Org.id == ApiKey.org_id).order_by(ApiKey.created_at)
            if org_id is not None:
                q = q.where(ApiKey.org_id == org_id)
            return [(k, n) for k, n in s.execute(q).all()]

    def revoke_key(self, key_id: str, *, org_id: str | None = None) -> None:
        with self.db.session() as s:
            key = s.get(ApiKey, key_id)
            if key is None or (org_id is not None and key.org_id != org_id):
                raise NotFound(f"key {key_id} not found")
            key.revoked_at = utcnow()
        self._cache.discard_where(lambda info: info.key_id == key_id)

    def authenticate(self, plaintext: str | None) -> KeyInfo:
        """Resolve a presented key to its org and scopes, or raise Unauthorized."""
        if not plaintext:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        digest = hash_key(plaintext)
        if (hit := self._cache.get(digest)) is not None:
            return hit
        with self.db.read() as s:
            row = s.execute(
                select(ApiKey, Org.name).join(Org, Org.id == ApiKey.org_id).where(ApiKey.key_hash == digest)
            ).first()
        if row is None or row[0].revoked_at is not None:
            raise Unauthorized("invalid or revoked API key")
        key, org_name = row
        info = KeyInfo(key.id, key.org_id, org_name, tuple(key.scopes), key.rate_limit_per_minute)
        self._cache.put(digest, info)
        return info

    def has_any_key(self) -> bool:
        with self.db.read() as s:
            return s.scalar(select(ApiKey.id).limit(1)) is not None
