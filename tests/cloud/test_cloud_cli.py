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
