"""A relative path in the environment or a config (``INSTORE_MODELS=../shared/data/models``, as the
README writes it) is made absolute when read, so it still names the same place after a chdir, in a
child process started elsewhere, or as the target of a symlink."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from protocol.facepack import get_pack
from protocol.facepack import models_dir as configured_models
from protocol.facepack.manifests import verify

REPO = Path(__file__).resolve().parents[2]
PACK = "scrfd500m-mbf"


def test_a_relative_models_setting_is_read_as_an_absolute_folder(models_dir, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("INSTORE_MODELS", os.path.relpath(models_dir, here))
    folder = configured_models()
    assert folder.is_absolute() and folder == models_dir
    # What tests/provisioning/test_models.py does with the folder: a farm of symlinks to its files.
    farm = tmp_path / "farm"
    farm.mkdir()
    for f in folder.iterdir():
        (farm / f.name).symlink_to(f)
    monkeypatch.chdir(tmp_path)
    assert set(verify(get_pack(PACK), farm)) == {f.name for f in get_pack(PACK).files}


def test_the_suite_runs_with_the_readme_relative_models_setting(models_dir):
    """The test that used to break: its symlinks to the model files pointed at a relative path, so
    the pack failed on a missing detector instead of the tampered recogniser it is about."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n0",
         "tests/edge/test_edge.py::test_tampered_pack_is_refused_naming_the_file"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, INSTORE_MODELS=os.path.relpath(models_dir, REPO)),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout


def test_instore_models_verify_with_a_relative_setting(models_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "provisioning", "models", "verify", "--pack", PACK],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, INSTORE_MODELS=os.path.relpath(models_dir, tmp_path), PYTHONPATH=str(REPO)),
    )
    assert result.returncode == 0, result.stderr


def test_edge_config_paths_are_absolute(tmp_path, monkeypatch):
    from edge.config import EdgeConfig

    monkeypatch.chdir(tmp_path)
    config = EdgeConfig.model_validate({
        "store": "s1", "device": "e1", "cameras": [{"id": "door", "source": "0"}],
        "models": "models", "state": "state/box.db", "bundle": "~/bundle",
        "wifi": {"source": "udp:9000", "secret_file": "secret", "calibration": "cal.json",
                 "registered": "keys.txt", "db": "wifi.db"},
    })
    assert config.models == tmp_path.resolve() / "models"
    assert config.state_path == tmp_path.resolve() / "state" / "box.db"
    assert config.bundle == Path.home().resolve() / "bundle"
    wifi = config.wifi
    assert wifi is not None
    for path in (wifi.secret_file, wifi.calibration, wifi.registered, wifi.db):
        assert path is not None and path.is_absolute() and path.parent == tmp_path.resolve()


def test_the_guide_screens_screenshot_path_is_absolute(tmp_path, monkeypatch):
    from kiosk.guide_screen.app import Options
    from protocol.transport import BrokerUrl

    monkeypatch.chdir(tmp_path)
    options = Options(url=BrokerUrl.parse("mqtt://127.0.0.1:1883"), brand="demo", store="s1", screen="main",
                      width=800, height=600, screenshot=Path("shot.png"))
    assert options.screenshot == tmp_path.resolve() / "shot.png"
