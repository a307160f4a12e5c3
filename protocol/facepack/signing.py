"""Signed model packs: a manifest of files and sha256 sums, signed with the brand's Ed25519 key.

The checksums in ``manifests.py`` say which bytes a pack *should* have; the signature says the
brand shipped this pack to this box. An edge box calls ``verify_signed_pack`` before loading a
pack and refuses an unsigned pack, a manifest signed by another key or altered after signing,
and any file whose bytes differ from the manifest. Signing lives in ``provisioning.signing``;
only verification is in the contract, so the edge never holds the private key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from protocol.facepack.manifests import ModelPack, PackError, sha256_of

#: The signed manifest sits in the pack folder next to the model files.
MANIFEST_NAME = "pack.signed.json"


class PackSignatureError(PackError):
    """A pack that is unsigned, signed by another key, or whose files differ from its manifest."""


class PackFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="a plain file name, no path")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class PackManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = 1
    pack_id: str
    created_at: AwareDatetime
    files: tuple[PackFile, ...] = Field(min_length=1)

    def canonical(self) -> bytes:
        """The exact bytes that are signed: sorted keys, no whitespace, so any edit changes them."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


class SignedManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest: PackManifest
    key_id: str = Field(description="sha256 of the raw public key, first 16 hex digits")
    signature: str = Field(description="base64 Ed25519 signature of manifest.canonical()")


def manifest_digest(manifest: PackManifest) -> str:
    """sha256 of the manifest's canonical bytes: what a rollout pins, so a box runs exactly the
    files the brand signed for it and not merely some signed build of the same pack id."""
    return hashlib.sha256(manifest.canonical()).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PackSignatureError(f"cannot read the brand's pack-signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise PackSignatureError(f"{path} is not an Ed25519 public key")
    return key


def describe_files(folder: Path, names: list[str]) -> tuple[PackFile, ...]:
    """The manifest entries for files in a folder (used by the signer and by tests)."""
    entries = []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise PackError(f"file {path} is missing, cannot list it in a manifest")
        entries.append(PackFile(name=name, sha256=sha256_of(path), size=path.stat().st_size))
    return tuple(entries)


def new_manifest(folder: Path, pack_id: str, names: list[str]) -> PackManifest:
    return PackManifest(
        pack_id=pack_id, created_at=dt.datetime.now(dt.UTC), files=describe_files(folder, names)
    )


def read_signed(folder: Path) -> SignedManifest:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise PackSignatureError(f"pack in {folder} is unsigned: no {MANIFEST_NAME}; refusing to load it")
    try:
        return SignedManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise PackSignatureError(f"{path} is not a valid signed manifest: {exc.errors()[0]['msg']}") from None


def verify_signed_pack(
    folder: Path, public_key: Ed25519PublicKey, *, pack: ModelPack | None = None
) -> dict[str, Path]:
    """Check the signature, then every file; return name -> path of the verified files.

    With ``pack``, the manifest must be for that pack id and cover every file the pack loads, so
    a valid signature over some other set of files does not vouch for this pack.
    """
    signed = read_signed(folder)
    expected_id = key_id(public_key)
    if signed.key_id != expected_id:
        raise PackSignatureError(
            f"pack in {folder} is signed by key {signed.key_id}, not the brand key {expected_id}; refusing it"
        )
    try:
        public_key.verify(base64.b64decode(signed.signature, validate=True), signed.manifest.canonical())
    except (InvalidSignature, ValueError):
        raise PackSignatureError(
            f"signature of {folder / MANIFEST_NAME} does not verify: the manifest was altered after signing"
        ) from None
    manifest = signed.manifest
    if pack is not None:
        if manifest.pack_id != pack.id:
            raise PackSignatureError(f"manifest in {folder} is for pack {manifest.pack_id!r}, not {pack.id!r}")
        listed = {f.name for f in manifest.files}
        missing = [f.name for f in pack.files if f.name not in listed]
        if missing:
            raise PackSignatureError(f"signed manifest of {pack.id} does not cover {', '.join(missing)}")
    paths: dict[str, Path] = {}
    for entry in manifest.files:
        path = folder / entry.name
        if not path.is_file():
            raise PackSignatureError(f"pack {manifest.pack_id}: file {path} is missing")
        actual = sha256_of(path)
        if actual != entry.sha256:
            raise PackSignatureError(
                f"pack {manifest.pack_id}: file {entry.name} was tampered with "
                f"(sha256 {actual}, signed manifest says {entry.sha256}); refusing the pack"
            )
        paths[entry.name] = path
    return paths
