"""The brand's pack-signing key (Ed25519) and signing a model pack folder.

The signing key is separate from the CA key: a leaked pack key lets someone ship a model, a
leaked CA key lets someone become any device, so they are rotated and guarded apart. Only the
public half goes into bundles; ``protocol.facepack.signing`` verifies with it.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.facepack import PACKS
from protocol.facepack.signing import MANIFEST_NAME, SignedManifest, key_id, new_manifest
from provisioning.pki import PkiError, write_private
from provisioning.registry import Home


def create_signing_key(home: Home) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(home.signing_key, pem)
    home.signing_pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def load_signing_key(home: Home) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(home.signing_key.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read the pack-signing key {home.signing_key}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PkiError(f"{home.signing_key} is not an Ed25519 key")
    return key


def sign_pack(home: Home, folder: Path, pack_id: str, names: list[str] | None = None) -> Path:
    """Write ``pack.signed.json`` into the pack folder; a known pack's files are listed by default."""
    if names is None:
        if pack_id in PACKS:
            names = [f.name for f in PACKS[pack_id].files]
        else:
            names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST_NAME)
    key = load_signing_key(home)
    manifest = new_manifest(folder, pack_id, names)
    signed = SignedManifest(
        manifest=manifest,
        key_id=key_id(key.public_key()),
        signature=base64.b64encode(key.sign(manifest.canonical())).decode(),
    )
    path = folder / MANIFEST_NAME
    path.write_text(signed.model_dump_json(indent=2))
    return path
