"""``instore models``: install checks every checksum before a file is put in place."""

from __future__ import annotations

import subprocess
import sys


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
