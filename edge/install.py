"""What an install bundle means for the edge box: who it is, where its broker is, and which
model pack it may run, signed by the brand.

The bundle (``instore provision bundle``, read by ``protocol.bundle.load_bundle``) names the box
(brand, store, device), its TLS broker and its model pack; the config file or flags may repeat
those but not contradict them, since the certificate only speaks for that one device. A box
started from a bundle refuses a model pack that the brand's pack-signing key did not sign, or
whose files changed since (``protocol.facepack.signing``), before any model is loaded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from edge.config import ConfigError
from protocol.bundle import Bundle, BundleError, load_bundle
from protocol.facepack import ModelPack, models_dir
from protocol.facepack.manifests import verify
from protocol.facepack.signing import (
    PackSignatureError,
    load_public_key,
    manifest_digest,
    read_signed,
    verify_signed_pack,
)


def with_bundle(data: dict[str, Any], origin: str) -> tuple[dict[str, Any], Bundle | None]:
    """``data`` completed from its ``bundle`` entry (if any), and the loaded bundle."""
    if not data.get("bundle"):
        return data, None
    try:
        bundle = load_bundle(Path(data["bundle"]))
    except BundleError as exc:
        raise ConfigError(f"{origin}: bundle: {exc}") from None
    c = bundle.config
    if c.role != "edge":
        raise ConfigError(f"{origin}: bundle {bundle.folder} is for a {c.role} ({c.device}), not an edge box")
    named = {"brand": c.brand, "store": c.store, "device": c.device, "broker": c.broker_url, "pack": c.model_pack}
    for field, value in named.items():
        if value is not None and data.get(field) not in (None, value):
            raise ConfigError(f"{origin}: {field}: {data[field]!r} contradicts the bundle, which says {value!r}")
    return {**data, **{k: v for k, v in named.items() if v is not None}}, bundle


def pack_folder(models: Path | None, pack: ModelPack) -> Path:
    """Where ``pack``'s files are: ``<models>/<pack id>/`` when the box keeps several packs side by
    side (each folder with its own signed manifest, so a rollout can switch between them), else
    the model folder itself (one pack, as installed before rollouts)."""
    root = models_dir(models)
    own = root / pack.id
    return own if own.is_dir() else root


def verify_pack(bundle: Bundle | None, pack: ModelPack, models: Path | None,
                manifest_sha256: str | None = None) -> Path:
    """The folder holding ``pack`` exactly as the brand signed it; raises ``PackError`` naming the
    problem. Without a bundle (no pack-signing key) only the pack's built-in sha256 list is
    checked, so such a box cannot honour a rollout that pins a signed manifest."""
    folder = pack_folder(models, pack)
    if bundle is None:
        if manifest_sha256 is not None:
            raise PackSignatureError(f"no install bundle, so no pack-signing key: cannot check the signed manifest "
                                     f"{manifest_sha256[:12]}... of pack {pack.id}")
        verify(pack, folder)
        return folder
    if bundle.pack_signing_key is None:
        raise PackSignatureError(f"bundle {bundle.folder} has no pack-signing key: cannot verify model pack {pack.id}")
    verify_signed_pack(folder, load_public_key(bundle.pack_signing_key), pack=pack)
    if manifest_sha256 is not None and (found := manifest_digest(read_signed(folder).manifest)) != manifest_sha256:
        raise PackSignatureError(f"another build of the pack: {pack.id} here has signed manifest {found[:12]}, "
                                 f"the command pins {manifest_sha256[:12]}")
    return folder


def certificate_expiry(bundle: Bundle) -> dt.datetime:
    """When the device certificate expires, read once from the certificate itself."""
    now = dt.datetime.now(dt.UTC)
    return now + dt.timedelta(days=bundle.cert_days_left(now))
