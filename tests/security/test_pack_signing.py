"""A model pack loads only with a valid brand signature over untouched files."""

from __future__ import annotations

import json
import shutil

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.facepack import get_pack
from protocol.facepack.signing import MANIFEST_NAME, PackSignatureError, load_public_key, verify_signed_pack
from provisioning.signing import sign_pack

PACK = "scrfd500m-mbf"


@pytest.fixture
def pack_folder(tmp_path, models_dir):
    folder = tmp_path / PACK
    folder.mkdir()
    for spec in get_pack(PACK).files:
        shutil.copyfile(models_dir / spec.name, folder / spec.name)
    return folder


def test_signed_pack_verifies(home, pack_folder):
    sign_pack(home, pack_folder, PACK)
    files = verify_signed_pack(pack_folder, load_public_key(home.signing_pub), pack=get_pack(PACK))
    assert set(files) == {f.name for f in get_pack(PACK).files}


def test_unsigned_pack_is_refused(home, pack_folder):
    with pytest.raises(PackSignatureError, match="unsigned"):
        verify_signed_pack(pack_folder, load_public_key(home.signing_pub))


def test_tampered_file_is_refused(home, pack_folder):
    sign_pack(home, pack_folder, PACK)
    victim = get_pack(PACK).recogniser.file.name
    with (pack_folder / victim).open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(PackSignatureError, match=f"{victim} was tampered with"):
        verify_signed_pack(pack_folder, load_public_key(home.signing_pub))


def test_edited_manifest_is_refused(home, pack_folder):
    sign_pack(home, pack_folder, PACK)
    path = pack_folder / MANIFEST_NAME
    doc = json.loads(path.read_text())
    doc["manifest"]["files"][0]["sha256"] = "0" * 64
    path.write_text(json.dumps(doc))
    with pytest.raises(PackSignatureError, match="altered after signing"):
        verify_signed_pack(pack_folder, load_public_key(home.signing_pub))


def test_pack_signed_by_another_key_is_refused(home, pack_folder, tmp_path):
    sign_pack(home, pack_folder, PACK)
    from cryptography.hazmat.primitives import serialization

    other = tmp_path / "other.pub"
    other.write_bytes(
        Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(PackSignatureError, match="not the brand key"):
        verify_signed_pack(pack_folder, load_public_key(other))


def test_manifest_must_cover_the_pack(home, pack_folder):
    sign_pack(home, pack_folder, PACK, names=[get_pack(PACK).detector.file.name])
    with pytest.raises(PackSignatureError, match="does not cover"):
        verify_signed_pack(pack_folder, load_public_key(home.signing_pub), pack=get_pack(PACK))
