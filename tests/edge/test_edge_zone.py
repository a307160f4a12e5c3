"""A camera's door zone (issue 19): faces are looked for only in a configured part of the frame."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edge.pipeline import FacePipeline, Placement
from edge.state import StateFile
from edge.visits import VisitRegistry
from protocol.device import CameraSpec, RemoteSettings
from protocol.facepack.engine import FaceEngine


def _pipeline(engine: FaceEngine, tmp_path, zone) -> FacePipeline:
    settings = RemoteSettings(cameras=[{"id": "door", "source": "x", "zone": zone}])
    return FacePipeline(engine, Placement("demo", "s1", "e1"), settings,
                        VisitRegistry(StateFile(tmp_path / "s.db"), settings.visits, 0.5), "door")


@pytest.mark.parametrize("pack", ["yunet-mbf", "scrfd500m-mbf"])
def test_the_zone_finds_the_faces_the_whole_frame_does_and_only_those(models_dir, kit, tmp_path, pack):
    engine = FaceEngine.load(pack, threads=1)
    frame = kit.walk_in(kit.people[0], frames=2)[0]  # one person, left of centre (x ~ 110-290)
    whole = _pipeline(engine, tmp_path, None)._detect(frame)
    assert len(whole) == 1
    left = _pipeline(engine, tmp_path, (0.0, 0.1, 0.6, 0.9))._detect(frame)
    assert len(left) == 1
    assert np.allclose(left[0].bbox, whole[0].bbox, atol=3), "same face, in frame coordinates"
    assert np.allclose(left[0].kps, whole[0].kps, atol=3)
    assert _pipeline(engine, tmp_path, (0.6, 0.0, 1.0, 1.0))._detect(frame) == [], "nothing outside the zone"


def test_a_zone_must_lie_inside_the_frame():
    with pytest.raises(ValidationError, match="0 <= left < right <= 1"):
        CameraSpec(id="door", source="x", zone=(0.5, 0.0, 0.4, 1.0))
    with pytest.raises(ValidationError):
        CameraSpec(id="door", source="x", zone=(0.0, 0.0, 1.2, 1.0))
