"""``instore cloud``: options from the settings model (then the environment, then a TOML file), and
every refusal in one line with exit code 2."""

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


def test_options_are_the_settings_fields() -> None:
    from cloud.settings import Settings

    serve = typer.main.get_command(cloud_app).commands["serve"]  # type: ignore[attr-defined]
    options = {param.name: param for param in serve.params}
    for option, field in (("card_ttl", "card_ttl_s"), ("rate_limit", "rate_limit_per_minute"), ("client_id", "client_id"),
                          ("port", "api_port"), ("broker", "broker_url")):
        assert options[option].help == Settings.model_fields[field].description
        assert options[option].default is None  # not given: the environment, the config file, the default decide
    assert options["port"].show_default == "8000" and options["client_id"].show_default is False


def test_settings_come_from_options_then_environment_then_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud.settings import Settings

    config = tmp_path / "cloud.toml"
    config.write_text('db = "from-file.db"\nbroker_url = "mqtt://file:1883"\ncard_ttl_s = 60\n'
                      'wifi_secret_file = "secret"\nclient_id = "cloud-a"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INSTORE_CARD_TTL_S", "90")
    monkeypatch.setenv("INSTORE_API_KEY", "bootstrap-key")
    settings = Settings.load(config, broker_url="mqtt://given:1883", card_ttl_s=None)
    assert settings.broker_url == "mqtt://given:1883"  # given
    assert settings.card_ttl_s == 90  # not given (None): the environment
    assert settings.db == str(tmp_path / "from-file.db")  # the file, made absolute
    assert settings.wifi_secret_file == tmp_path / "secret"
    assert settings.client_id == "cloud-a" and settings.session_expiry_s == 3600  # a stable id keeps its session
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "bootstrap-key"
    assert "bootstrap-key" not in repr(settings)
    monkeypatch.setenv("INSTORE_CONFIG", str(config))
    assert Settings(api_key=None).db == str(tmp_path / "from-file.db")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('db = "c.db"\nport = 8000\n', "port: not a setting"),
        ('db = "c.db"\ncard_ttl_s = 1\n', "card_ttl_s: Input should be greater than or equal to 5"),
        ("db = \n", "is not TOML"),
    ],
)
def test_a_bad_config_file_exits_2_with_a_message(instore: typer.Typer, tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "cloud.toml").write_text(config)
    result = CliRunner().invoke(instore, ["cloud", "serve", "--config", str(tmp_path / "cloud.toml")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_every_command_reports_errors_in_one_place(instore: typer.Typer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSTORE_DB", raising=False)
    monkeypatch.delenv("INSTORE_CONFIG", raising=False)
    missing = CliRunner().invoke(instore, ["cloud", "devices", "import", str(tmp_path / "nope.json"),
                                           "--db", str(tmp_path / "c.db")])
    assert missing.exit_code == 2 and f"cannot read {tmp_path / 'nope.json'}: No such file" in missing.output
    no_db = CliRunner().invoke(instore, ["cloud", "devices", "list"])
    assert no_db.exit_code == 2 and "db: not set" in no_db.output
    monkeypatch.setenv("INSTORE_DB", str(tmp_path / "env.db"))
    listed = CliRunner().invoke(instore, ["cloud", "devices", "list"])
    assert listed.exit_code == 0, listed.output
    assert (tmp_path / "env.db").exists()
    bad_key = CliRunner().invoke(instore, ["cloud", "create-key", "--name", "x", "--role", "emperor"])
    assert bad_key.exit_code == 2 and "role must be one of" in bad_key.output
    lonely = CliRunner().invoke(instore, ["cloud", "serve", "--db", str(tmp_path / "c.db"), "--session-expiry", "60"])
    assert lonely.exit_code == 2 and "needs a stable client_id" in lonely.output


def test_the_broker_urls_tls_files_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cloud.settings import Settings
    from protocol.transport import BrokerUrl

    monkeypatch.chdir(tmp_path)
    url = Settings(db="c.db", api_key=None, broker_url="mqtts://broker:8883?ca=b/ca.pem&cert=b/cdp.pem&key=b/cdp.key").broker_url
    files = BrokerUrl.parse(url or "").tls_files
    assert files is not None and (files.ca, files.cert, files.key) == (
        tmp_path / "b/ca.pem", tmp_path / "b/cdp.pem", tmp_path / "b/cdp.key")
    assert Settings(db="c.db", api_key=None, broker_url="mqtt://b:1883?protocol=3.1.1").broker_url == (
        "mqtt://b:1883?protocol=3.1.1")
