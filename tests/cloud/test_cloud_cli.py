"""``instore cloud serve`` refuses bad configuration with one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cloud.cli import app as cloud_app


@pytest.fixture
def instore() -> typer.Typer:
    """The cloud group mounted the way the root ``instore`` command mounts it."""
    root = typer.Typer()
    root.add_typer(cloud_app, name="cloud")

    @root.callback()
    def _root() -> None: ...

    return root


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--broker", "http://127.0.0.1:1883"], "must look like mqtt://host:port"),
        (["--broker", "mqtt://127.0.0.1:1883", "--share-group", "a/b"], "group id 'a/b'"),
        (["--pack", "no-such-pack"], "unknown model pack"),
    ],
)
def test_bad_configuration_exits_2_with_a_message(
    instore: typer.Typer, tmp_path: Path, models_dir: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(instore, ["cloud", "serve", "--db", str(tmp_path / "c.db"), *args])

    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_devices_import_and_list(instore: typer.Typer, tmp_path: Path) -> None:
    import json

    db = str(tmp_path / "c.db")
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"v": 1, "brand": "lumiere", "broker_url": "mqtts://x:8883", "devices": [
        {"store": "sh-01", "device": "edge-01", "role": "edge", "serial": "ab12",
         "issued_at": "2025-01-01T00:00:00+00:00", "not_after": "2026-01-01T00:00:00+00:00"}]}))
    done = CliRunner().invoke(instore, ["cloud", "devices", "import", str(registry), "--db", db])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"brand": "lumiere", "devices": 1, "revoked": 0}
    listed = CliRunner().invoke(instore, ["cloud", "devices", "list", "--db", db])
    assert json.loads(listed.stdout)["serial"] == "ab12"
    (tmp_path / "bad.json").write_text("[]")
    bad = CliRunner().invoke(instore, ["cloud", "devices", "import", str(tmp_path / "bad.json"), "--db", db])
    assert bad.exit_code == 2 and "not a provisioning registry" in bad.output
