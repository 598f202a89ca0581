"""Organisations and API keys. Keys are random, shown once, stored as SHA-256 hashes.

Every request resolves its key in SQL (one indexed lookup, no per-process cache): a revocation made by any
process — another gunicorn worker, another ``memrelay serve`` on the same PostgreSQL, the CLI — refuses the
key's very next request everywhere. A key may carry a department restriction (:class:`AccessScope`)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from memrelay.engine.core.access import UNRESTRICTED, AccessScope
from memrelay.engine.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from memrelay.engine.core.util import new_id, utcnow
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.driver_select import DriverSelect
from memrelay.engine.stores.db.models import ApiKey, Org

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "mr_"


@dataclass(frozen=True)
class KeyInfo:
    """What an authenticated request may do."""

    key_id: str
    org_id: str
    org_name: str
    scopes: tuple[str, ...]
    rate_limit_per_minute: int | None
    access: AccessScope = UNRESTRICTED

    def allows(self, scope: str) -> bool:
        # admin implies write implies read
        order = {"read": 0, "write": 1, "admin": 2}
        return any(order[s] >= order[scope] for s in self.scopes)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


_KEY_LOOKUP = (select(ApiKey.id, ApiKey.org_id, Org.name, ApiKey.scopes, ApiKey.rate_limit_per_minute, ApiKey.access)
               .join(Org, Org.id == ApiKey.org_id)
               .where(ApiKey.key_hash == bindparam("digest"), ApiKey.revoked_at.is_(None)))
"""The live key with a digest (built once: building the select cost more than the indexed lookup)."""
_KEY_LOOKUP_DRIVER = DriverSelect(_KEY_LOOKUP)
"""Run on a driver connection: keys and orgs hold no department-filtered rows, and no session is needed."""


class Tenancy:
    """Org and key management over the SQL store."""

    def __init__(self, db: Database):
        from memrelay.engine.stores import access_filter

        self.db = db
        access_filter.install()  # department scopes are enforced on every session of this process

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
                   name: str = "", rate_limit_per_minute: int | None = None,
                   access: AccessScope = UNRESTRICTED, creator: KeyInfo | None = None) -> tuple[str, ApiKey]:
        """Create a key; returns the plaintext (shown once) and the stored row.

        ``access`` restricts it to a department (entity types, collections, guideline tags). A key created
        through the API (``creator``) is never wider than its creator's own restriction."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise BadRequest(f"scopes must be a non-empty subset of {list(SCOPES)}", details={"invalid": bad})
        if creator is not None and not access.within(creator.access):
            raise Forbidden("a department-restricted key can only create keys within its own restriction",
                            details={"yours": creator.access.to_json(), "asked": access.to_json()})
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            id=new_id("key"), org_id=org_id, name=name, prefix=plaintext[:10], key_hash=hash_key(plaintext),
            scopes=list(dict.fromkeys(scopes)), rate_limit_per_minute=rate_limit_per_minute, created_at=utcnow(),
            access=access.to_json(),
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
            if key.revoked_at is None:
                key.revoked_at = utcnow()

    def authenticate(self, plaintext: str | None) -> KeyInfo:
        """Resolve a presented key to its org, scopes and department restriction, or raise Unauthorized.

        One indexed SQL lookup per call, never cached: revocation takes effect on the next request in every
        process sharing the database."""
        if not plaintext:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        if len(plaintext) > 200:
            raise Unauthorized("invalid or revoked API key")
        rows = _KEY_LOOKUP_DRIVER.rows(self.db.read_engine, {"digest": hash_key(plaintext)})
        if not rows:
            raise Unauthorized("invalid or revoked API key")
        key_id, org_id, org_name, scopes, rate, access = rows[0]
        return KeyInfo(key_id, org_id, org_name, tuple(scopes), rate,
                       AccessScope.from_json(access).for_org(org_id))

    def has_any_key(self) -> bool:
        with self.db.read() as s:
            return s.scalar(select(ApiKey.id).limit(1)) is not None
