"""The ``instore`` shell: ``--version``, wings imported only when used, a missing role's extra named."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

import pytest

#: Runs ``instore ARGS...`` in-process, then prints the top-level modules it loaded as JSON.
#: Modules listed in BLOCK (argv[1], comma-separated) are made unimportable first, as on a box
#: installed without the role that brings them.
PROBE = """
import json, sys
block = [m for m in sys.argv[1].split(",") if m]
for name in block:
    sys.modules[name] = None
from provisioning.cli import app
try:
    app(sys.argv[2:], prog_name="instore")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules if m not in block})}))
"""

#: What an edge-only box does not have (pyproject's cloud and kiosk extras) and must not load.
OTHER_ROLES = {"fastapi", "starlette", "uvicorn", "PySide6", "faiss", "psycopg", "psycopg_pool", "amqtt", "segno", "cloud", "kiosk"}


def probe(*args: str, block: tuple[str, ...] = ()) -> tuple[dict, subprocess.CompletedProcess[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(block), *args], capture_output=True, text=True, timeout=60
    )
    return json.loads(result.stdout.strip().splitlines()[-1]), result


def test_version_is_the_installed_package_version():
    result = subprocess.run([sys.executable, "-m", "provisioning", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"instore {version('instore')}"


@pytest.mark.parametrize("args", [("edge", "--help"), ("edge", "run", "--help"), ("edge", "wifi", "run", "--help")])
def test_edge_help_loads_no_other_role(args):
    report, result = probe(*args)
    assert report["code"] == 0, result.stderr
    assert "instore edge" in result.stdout
    assert "edge" in report["modules"]
    assert not OTHER_ROLES & set(report["modules"])


def test_top_level_help_imports_no_wing():
    report, result = probe("--help")
    assert report["code"] == 0, result.stderr
    for wing in ("cloud", "edge", "kiosk", "models", "provision", "esl", "demo"):
        assert wing in result.stdout
    assert not {"cloud", "edge", "kiosk", "numpy", "paho"} & set(report["modules"])


def test_edge_help_works_without_the_other_roles_installed():
    report, result = probe("edge", "--help", block=("fastapi", "PySide6", "faiss", "psycopg", "cv2", "insightface"))
    assert report["code"] == 0, result.stderr
    assert "run" in result.stdout and "wifi" in result.stdout


def test_a_role_that_is_not_installed_names_its_extra():
    report, result = probe("kiosk", "--store", "s1", block=("PySide6",))
    assert report["code"] == 1
    assert "'PySide6' is not installed" in result.stderr
    assert "pip install 'instore[kiosk]'" in result.stderr
