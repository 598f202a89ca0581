"""Answers of the key-management API and the key check (``GET /test``)."""

from __future__ import annotations

from pydantic import BaseModel


class ApiKey(BaseModel):
    id: str
    name: str | None = None
    prefix: str
    scopes: list[str]
    createdAt: str | None = None
    revoked: bool


class ApiKeyList(BaseModel):
    keys: list[ApiKey]


class CreatedKey(BaseModel):
    id: str
    key: str
    scopes: list[str]
    prefix: str


class RevokedKey(BaseModel):
    id: str
    revoked: bool


class KeyCheck(BaseModel):
    organizationId: str
    userId: str
    keyId: str
    scopes: list[str]
    timestamp: str
    ip: str | None = None
    userAgent: str | None = None
