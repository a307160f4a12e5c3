"""API keys with roles, stored hashed.

Roles: ``hq_admin`` (everything), ``hq_analyst`` (reads, counts and exports; changes nothing),
``store_manager`` (one store's members, visits and segments; may sign up members at the counter),
``device`` (an edge box's key: proves who it is, reads no member data).

A key is 256 random bits shown once at creation; the database keeps only its SHA-256. A slow
password hash would add nothing against guessing 256 random bits and would cost every request.
``INSTORE_API_KEY`` stays a bootstrap ``hq_admin`` key (compared in constant time, never stored).

Every key belongs to a named person (``name``): audits and acknowledgements record that person.

There is no silent open mode. Only with the explicit development flag (``dev_open_mode``, which
the settings allow on a loopback address only) and while no key has *ever* existed is the API open
as ``hq_admin``; the app warns loudly at start. Once a key has existed, revoking the last one
locks the API: recover on the server with ``instore cloud create-key``.
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
    key_id: str | None = None  # None: the bootstrap key or open development mode
    person: str | None = None  # who the key was issued to

    @property
    def name(self) -> str:
        """Who acted, for audits and acks: the key's person, their role and key id."""
        if self.key_id is None:
            return f"{self.person or 'bootstrap'} ({self.role})"
        return f"{self.person} ({self.role}:{self.key_id})"


@dataclass(frozen=True)
class NewKey:
    id: str
    key: str  # shown once


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(db: Database, *, name: str, role: Role, store: str | None = None) -> NewKey:
    name = name.strip()
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Invalid("a key belongs to a named person: give their name", code="invalid_key")
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


def ever_had_keys(db: Database) -> bool:
    """Whether any key was ever created (revoked ones count: they lock the API for good)."""
    return bool(db.scalar("SELECT 1 FROM api_keys LIMIT 1"))


def authenticate(db: Database, bootstrap: SecretStr | str | None, given: str | None, *,
                 open_mode: bool = False) -> Principal | None:
    """Who is calling; None when the key is missing or wrong.

    Without a key the caller is ``hq_admin`` only in development open mode (``open_mode``), with
    no bootstrap key and while no key has ever existed."""
    if isinstance(bootstrap, SecretStr):
        bootstrap = bootstrap.get_secret_value()
    if given is not None and bootstrap is not None and hmac.compare_digest(given.encode(), bootstrap.encode()):
        return Principal("hq_admin", person="bootstrap")
    if given is not None:
        row = db.one("SELECT id, name, role, store FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                     (_hash(given),))
        if row is not None:
            return Principal(row["role"], row["store"], row["id"], row["name"])
        return None
    if open_mode and bootstrap is None and not ever_had_keys(db):
        return Principal("hq_admin", person="open development mode")
    return None
