"""Issue 18: enrolment refuses photos that would make a bad template, each with a reason code and a
Chinese message: blurred, turned away, a low detector score, a face under 80 px, and a photo unlike
the member's other enrolled photos (probably someone else). Several good photos of one member enrol."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cloud.faces import enrolment
from protocol.facepack import quality

WANG = {"name": "王芳", "phone": "+8613800138000", "consent": {"face": True}}


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def _enrol(client, member_id: str, photo: bytes):
    return client.post(f"/v1/members/{member_id}/faces", files={"image": ("face.jpg", photo, "image/jpeg")})


def _refused(response, code: str) -> str:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in detail["message"]), "a Chinese message for the assistant"
    return detail["message"]


def test_several_photos_of_one_member_enrol_and_someone_else_is_refused(start_cloud, faces_dir) -> None:
    client, runtime = start_cloud()
    member_id = client.post("/v1/members", json=WANG).json()["id"]
    first, second = faces_dir / "deepface_id01" / "img2.jpg", faces_dir / "deepface_id01" / "img4.jpg"
    assert _enrol(client, member_id, first.read_bytes()).status_code == 201
    stranger = sorted((faces_dir / "deepface_id02").glob("*.jpg"))[0]
    message = _refused(_enrol(client, member_id, stranger.read_bytes()), "unlike_other_photos")
    assert "threshold" in message
    assert _enrol(client, member_id, second.read_bytes()).status_code == 201
    assert len(runtime.index) == 2


def test_a_blurred_photo_is_refused(start_cloud, faces_dir) -> None:
    client, runtime = start_cloud()
    member_id = client.post("/v1/members", json=WANG).json()["id"]
    photo = cv2.imread(str(faces_dir / "deepface_id13" / "img25.jpg"))
    blurred = cv2.GaussianBlur(photo, (0, 0), sigmaX=photo.shape[1] / 80)
    _refused(_enrol(client, member_id, _jpeg(blurred)), "blurred")
    assert len(runtime.index) == 0


def test_a_turned_head_is_refused(start_cloud, faces_dir, monkeypatch) -> None:
    client, runtime = start_cloud()
    member_id = client.post("/v1/members", json=WANG).json()["id"]
    profile_view = lambda kps: (38.0, 4.0)  # noqa: E731 - the five landmarks of a profile view
    monkeypatch.setattr(quality, "head_pose", profile_view)  # what frontal_enough measures
    monkeypatch.setattr(enrolment, "head_pose", profile_view)  # what the refusal reports
    message = _refused(_enrol(client, member_id, (faces_dir / "deepface_id13" / "img25.jpg").read_bytes()),
                       "turned_away")
    assert "yaw 38" in message
    assert len(runtime.index) == 0


@pytest.mark.parametrize("score", [0.3])
def test_a_face_the_detector_doubts_is_refused(start_cloud, faces_dir, monkeypatch, score) -> None:
    client, runtime = start_cloud()
    member_id = client.post("/v1/members", json=WANG).json()["id"]
    detect = runtime.enroller._engine.detect
    monkeypatch.setattr(runtime.enroller._engine, "detect",
                        lambda image: [type(f)(f.bbox, f.kps, score) for f in detect(image)])
    _refused(_enrol(client, member_id, (faces_dir / "deepface_id13" / "img25.jpg").read_bytes()), "low_detector_score")
