"""Every pack through the product's engine, the commercially usable pack, and the licence gate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from protocol.facepack import PACKS, NotCommercialError, PackError, get_pack, require_commercial
from protocol.facepack.manifests import packaged_path, verify


def test_every_pack_states_the_licences_a_brand_must_see():
    for pack in PACKS.values():
        assert pack.licences.code and pack.licences.weights and pack.licences.training_data
        assert pack.commercial_use == all("non-commercial" not in f.licence for f in pack.files), pack.id


def test_require_commercial_refuses_research_packs_and_names_the_usable_ones():
    assert require_commercial("yunet-dlib").id == "yunet-dlib"
    with pytest.raises(NotCommercialError, match=r"scrfd500m-mbf is not cleared.*MS-Celeb-1M.*may use: yunet-dlib"):
        require_commercial("scrfd500m-mbf")
    assert issubclass(NotCommercialError, PackError)  # callers that already handle PackError refuse it too


def test_the_68_point_model_is_never_part_of_a_pack():
    names = {f.name for pack in PACKS.values() for f in pack.files}
    assert not any("68" in n for n in names)


def test_calibrated_packs_carry_their_figures():
    for pack in PACKS.values():
        if pack.calibration is not None:
            assert pack.calibration.date and "openset" in pack.calibration.method
            assert {"fpir", "fnir", "wrong_member"} <= set(pack.calibration.figures)


def _photos(faces_dir: Path, person: str) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sorted((faces_dir / person).iterdir())[:2]]


@pytest.mark.parametrize("pack_id", sorted(PACKS))
def test_each_pack_tells_a_person_from_another(pack_id, models_dir, faces_dir):
    if get_pack(pack_id).recogniser.kind == "dlib":
        pytest.importorskip("dlib", reason="the commercial-pack extra is not installed")
    from protocol.facepack.engine import FaceEngine

    engine = FaceEngine.load(pack_id, models_dir)
    vectors, crops = [], []
    for image in _photos(faces_dir, "deepface_id01") + _photos(faces_dir, "deepface_id02"):
        face = engine.detect(image)[0]
        crop = engine.align(image, face)
        crops.append(crop)
        vectors.append(engine.embed_aligned([crop])[0])
    v = np.stack(vectors)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    side = 150 if engine.pack.recogniser.kind == "dlib" else 112
    assert all(c.shape == (side, side, 3) and c.dtype == np.uint8 for c in crops)
    scores = v @ v.T
    same = min(scores[0, 1], scores[2, 3])
    other = max(scores[0, 2], scores[0, 3], scores[1, 2], scores[1, 3])
    assert same > engine.pack.match_threshold > other, (pack_id, scores.round(3))
    # a batch gives the same vectors as one face at a time
    assert np.allclose(engine.embed_aligned(crops), v, atol=1e-4)


def test_dlib_files_come_from_the_installed_package_with_their_checksum(models_dir, tmp_path):
    pytest.importorskip("dlib", reason="the commercial-pack extra is not installed")
    pack = get_pack("yunet-dlib")
    (tmp_path / pack.detector.file.name).symlink_to(models_dir / pack.detector.file.name)
    paths = verify(pack, tmp_path)
    assert paths[pack.recogniser.file.name] == packaged_path(pack.recogniser.file)
    # a file in the model folder wins over the package's, and is checked like any other
    (tmp_path / pack.recogniser.file.name).write_bytes(b"not the model")
    with pytest.raises(PackError, match="dlib_face_recognition_resnet_model_v1.dat has sha256"):
        verify(pack, tmp_path)
