"""``instore provision database-config``: the recommended PostgreSQL settings for a few machines
(expectations worked out by hand from the rules in provisioning/database_config.py), its refusals,
and a private server started from the fragment (bench/pg_server.py) that the CDP opens and whose
``SHOW`` answers are the fragment's values."""

from __future__ import annotations

import inspect
import re

import pytest
from typer.testing import CliRunner

from provisioning.database_config import (
    CDP_POOL_SIZE,
    CDP_WORK_MEM,
    GB,
    MB,
    DatabaseConfigError,
    fragment,
    machine,
    parse_memory,
    recommend,
    show,
    values,
)
from provisioning.provision_cli import app

# name -> value, in the fragment's order
AT_24GIB_2_CORES_SSD = {
    "shared_buffers": "6GB",                    # 24GB / 4
    "effective_cache_size": "18GB",             # 24GB * 3/4
    "maintenance_work_mem": "1536MB",           # 24GB / 16
    "work_mem": "109MB",                        # (24576 - 6144)MB / (4 x 42) = 109.7
    "max_connections": "42",                    # 4 processes x 8 + 10
    "max_wal_size": "16GB",                     # 24GB, at most 16GB
    "min_wal_size": "4GB",                      # 16GB / 4
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "wal_compression": "lz4",
    "random_page_cost": "4",                    # measured: 1.1 slowed the rebuild
    "effective_io_concurrency": "200",          # ssd
    "max_worker_processes": "8",                # max(8, 2)
    "max_parallel_workers": "2",                # the cores
    "max_parallel_workers_per_gather": "1",     # 2 // 2
    "max_parallel_maintenance_workers": "1",
}


def test_24gib_2_cores_ssd():
    assert values(recommend(machine("24GiB", 2))) == AT_24GIB_2_CORES_SSD


def test_8gib_4_cores_hdd_6_processes():
    got = values(recommend(machine("8GiB", 4, "hdd", processes=6)))
    assert got == {
        **AT_24GIB_2_CORES_SSD,
        "shared_buffers": "2GB",
        "effective_cache_size": "6GB",
        "maintenance_work_mem": "512MB",
        "work_mem": "26MB",                     # (8192 - 2048)MB / (4 x 58) = 26.5
        "max_connections": "58",                # 6 x 8 + 10
        "max_wal_size": "8GB",
        "min_wal_size": "2GB",
        "effective_io_concurrency": "2",
        "max_parallel_workers": "4",
        "max_parallel_workers_per_gather": "2",
        "max_parallel_maintenance_workers": "2",
    }


def test_smallest_machine_one_core():
    got = values(recommend(machine("1GiB", 1, processes=1)))
    assert got == {
        **AT_24GIB_2_CORES_SSD,
        "shared_buffers": "256MB",
        "effective_cache_size": "768MB",
        "maintenance_work_mem": "64MB",
        "work_mem": "10MB",                     # (1024 - 256)MB / (4 x 18) = 10.7
        "max_connections": "18",                # 1 x 8 + 10
        "max_wal_size": "2GB",                  # 1GB, at least 2GB
        "min_wal_size": "512MB",
        "max_parallel_workers": "1",
        "max_parallel_workers_per_gather": "0",  # no parallel query on one core
        "max_parallel_maintenance_workers": "0",
    }


def test_large_machine_hits_the_caps():
    got = values(recommend(machine("256GiB", 32)))
    assert got == {
        **AT_24GIB_2_CORES_SSD,
        "shared_buffers": "16GB",               # not 64GB
        "effective_cache_size": "192GB",
        "maintenance_work_mem": "2GB",          # not 16GB
        "work_mem": "256MB",                    # the CDP's own, not (262144 - 16384) / 168
        "max_worker_processes": "32",
        "max_parallel_workers": "32",
        "max_parallel_workers_per_gather": "4",
        "max_parallel_maintenance_workers": "4",
    }


def test_uneven_memory_is_whole_megabytes_as_show_prints_them():
    got = values(recommend(machine("23.5GiB", 2)))
    assert got["shared_buffers"] == "6016MB"    # 24064MB / 4
    assert got["effective_cache_size"] == "18048MB"
    assert got["max_wal_size"] == "16GB"


@pytest.mark.parametrize(("text", "size"), [
    ("24GiB", 24 * GB), ("24GB", 24 * GB), ("24g", 24 * GB), ("512MB", 512 * MB), ("512 MiB", 512 * MB),
    ("1.5G", 1536 * MB), ("64kB", 64 * 1024), ("2048M", 2 * GB), ("1TiB", 1024 * GB), ("4096B", 4096),
])
def test_memory_strings(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"memory": "24"}, "--memory: memory must be a number and a unit, like 24GiB or 512MB, not '24'"),
    ({"memory": "lots"}, "not 'lots'"),
    ({"memory": "-8GB"}, "not '-8GB'"),
    ({"memory": "8GiBB"}, "not '8GiBB'"),
    ({"memory": "1e3GB"}, "not '1e3GB'"),
    ({"memory": "512MB"}, "--memory: 512MB is too little for the CDP: at least 1GB"),
    ({"memory": "0GB"}, "0 bytes is too little"),
    ({"memory": "100TiB"}, "is not a machine's memory"),
    ({"cores": 0}, "--cores: Input should be greater than or equal to 1"),
    ({"storage": "nvme"}, "--storage: Input should be 'ssd' or 'hdd'"),
    ({"processes": 0}, "--processes: Input should be greater than or equal to 1"),
])
def test_refusals_name_the_option_and_why(kwargs, reason):
    with pytest.raises(DatabaseConfigError) as caught:
        machine(**{"memory": "8GiB", "cores": 2, **kwargs})
    assert reason in str(caught.value)


def test_command_refuses_with_exit_1_and_a_reason():
    result = CliRunner().invoke(app, ["database-config", "--memory", "huge", "--cores", "2"])
    assert result.exit_code == 1
    assert "error: --memory: memory must be a number and a unit" in result.output


def test_command_prints_the_fragment_or_writes_it(tmp_path):
    printed = CliRunner().invoke(app, ["database-config", "--memory", "24GiB", "--cores", "2"])
    assert printed.exit_code == 0, printed.output
    assert printed.output == fragment(machine("24GiB", 2))
    out = tmp_path / "instore.conf"
    written = CliRunner().invoke(app, ["database-config", "--memory", "24GiB", "--cores", "2", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text() == printed.output
    assert f"include '{out}'" in written.output


def test_runs_without_the_cloud_packages():
    """A database machine may have only the base install: the command imports no role's stack."""
    from tests.provisioning.test_cli import OTHER_ROLES, probe

    report, result = probe("provision", "database-config", "--memory", "24GiB", "--cores", "2",
                           block=("sqlite_utils", "psycopg", "psycopg_pool", "fastapi", "cv2", "onnxruntime"))
    assert report["code"] == 0, result.stderr
    assert "shared_buffers" in result.stdout
    assert not OTHER_ROLES & set(report["modules"])


def test_defaults_are_this_machines():
    spec = machine()
    assert spec.memory >= 1 * GB and spec.cores >= 1 and spec.storage == "ssd"


def test_every_setting_line_says_why():
    lines = [line for line in fragment(machine("24GiB", 2)).splitlines() if line and not line.startswith("#")]
    assert len(lines) == len(AT_24GIB_2_CORES_SSD)
    for line in lines:
        assert re.fullmatch(r"\w+ += '?[\w.]+'? +# .{20,}", line), line


def test_the_mirrored_figures_are_the_cdps_own():
    """The command mirrors two figures of cloud/db/database.py rather than import it (a database
    machine need not have the cloud's packages): they must still agree."""
    from cloud.db.database import PostgresDatabase, _configure_session

    assert inspect.signature(PostgresDatabase.__init__).parameters["max_size"].default == CDP_POOL_SIZE
    assert f"SET work_mem = '{show(CDP_WORK_MEM)}'" in inspect.getsource(_configure_session)


def test_a_private_server_runs_the_fragment_and_the_cdp_opens_on_it():
    """bench/pg_server.py: initdb, the fragment included, pg_ctl start; the CDP migrates on it; every
    setting of the fragment is what the server reports, read from the fragment's file."""
    from bench.pg_server import private_server, unavailable

    if reason := unavailable():
        pytest.skip(reason)
    import psycopg

    from cloud.runtime import open_cdp

    spec = machine("1GiB", 2)
    expected = values(recommend(spec))
    with private_server(spec) as server:
        assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}"
        db = open_cdp(server.url, sample_catalogue=False)
        try:
            with db.transaction() as tx:
                assert tx.scalar("SELECT count(*) FROM schema_migrations") > 0
                assert tx.scalar("SHOW shared_buffers") == expected["shared_buffers"] == "256MB"
                assert tx.scalar("SHOW work_mem") == show(CDP_WORK_MEM)  # the CDP's own session setting
        finally:
            db.close()
        with psycopg.connect(server.url) as conn:  # a session of its own: the server's values
            shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in expected}
            sources = dict(conn.execute("SELECT name, sourcefile FROM pg_settings WHERE name = ANY(%s)",
                                        [list(expected)]).fetchall())
    assert shown == expected
    assert {name: source.rsplit("/", 1)[-1] for name, source in sources.items()} == dict.fromkeys(
        expected, "instore-recommended.conf")
