"""API keys with roles, stored hashed.

Roles: ``hq_admin`` (everything), ``hq_analyst`` (reads, counts and exports; changes nothing),
``store_manager`` (one store's members, visits and segments; may sign up members at the counter),
``device`` (an edge box's key: proves who it is, reads no member data).

A key is 256 random bits shown once at creation; the database keeps only its SHA-256. A slow
password hash would add nothing against guessing 256 random bits and would cost every request.
``INSTORE_API_KEY`` stays a bootstrap ``hq_admin`` key (compared in constant time, never stored).
With neither a bootstrap key nor any stored key the API is open as ``hq_admin``: the local demo
mode; creating the first key closes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.errors import Invalid
from protocol.messages import new_id

Role = Literal["hq_admin", "hq_analyst", "store_manager", "device"]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
KEY_PREFIX = "isk_"


@dataclass(frozen=True)
class Principal:
    role: Role
    store: str | None = None
    key_id: str | None = None  # None: the bootstrap key or open local mode

    @property
    def name(self) -> str:
        return f"{self.role}:{self.key_id or 'bootstrap'}"


@dataclass(frozen=True)
class NewKey:
    id: str
    key: str  # shown once


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(db: Database, *, name: str, role: Role, store: str | None = None) -> NewKey:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", code="invalid_key")
    if (role in ("store_manager", "device")) != (store is not None):
        raise Invalid("store_manager and device keys belong to exactly one store; HQ keys to none", code="invalid_key")
    key_id, key = new_id(), KEY_PREFIX + secrets.token_urlsafe(32)
    db.execute("INSERT INTO api_keys (id, name, role, store, key_hash, created) VALUES (?, ?, ?, ?, ?, ?)",
               (key_id, name, role, store, _hash(key), iso(utcnow())))
    return NewKey(key_id, key)


def revoke_key(db: Database, key_id: str) -> bool:
    return db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                      (iso(utcnow()), key_id)) > 0


def list_keys(db: Database, *, limit: int, offset: int) -> list[dict]:
    return db.query("SELECT id, name, role, store, created, revoked_at FROM api_keys ORDER BY created, id "
                    "LIMIT ? OFFSET ?", (limit, offset))


def authenticate(db: Database, bootstrap: SecretStr | str | None, given: str | None) -> Principal | None:
    """Who is calling; None when the key is missing or wrong (and keys are required)."""
    if isinstance(bootstrap, SecretStr):
        bootstrap = bootstrap.get_secret_value()
    if given is not None and bootstrap is not None and hmac.compare_digest(given.encode(), bootstrap.encode()):
        return Principal("hq_admin")
    if given is not None:
        row = db.one("SELECT id, role, store FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (_hash(given),))
        if row is not None:
            return Principal(row["role"], row["store"], row["id"])
        return None
    if bootstrap is None and not db.scalar("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1"):
        return Principal("hq_admin")
    return None
