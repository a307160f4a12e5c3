"""Shared fixtures: a real Mosquitto on a free loopback port (one per test module), the model
folder, artefact dir."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest

from tests.netutil import MosquittoProcess, free_port

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
ARTIFACTS = REPO / "artifacts"


class Mosquitto(MosquittoProcess):
    """A private plain-MQTT Mosquitto with a generated config on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir / "mosquitto.conf", free_port())
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # Started as root, Mosquitto drops to its own user, which cannot write the log or a
            # persistence file under pytest's private tmp folders; keep the current user.
            f"user {getpass.getuser()}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "max_queued_messages 10000\n"
            f"log_dest file {workdir / 'mosquitto.log'}\n"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files holding a ``long`` test first, the rest in collection order. The workers take whole
    files in this order (pyproject's ``--dist loadfile --no-loadscope-reorder``); in xdist's own order,
    most tests first, the 3-minute soak came last and ran alone on one core for its last minutes while
    the other idled."""
    long_files = {item.path for item in items if item.get_closest_marker("long")}
    items.sort(key=lambda item: item.path not in long_files)


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory):
    """A broker per test module, not per session: the cloud ingests every brand's events and
    every retained device state, and an edge test's recorder listens to a whole store, so on a
    shared broker one file's leftovers (a box's retained "offline", a process still running) turned
    into another file's devices, erase targets and rollout members, and results depended on the
    order the files ran in. A start takes about 0.05 s."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    # Absolute: tests symlink to files in it and start processes in other directories.
    folder = Path(os.environ.get("INSTORE_MODELS", SHARED_DATA / "models")).resolve()
    if not folder.is_dir():
        pytest.fail(f"model folder {folder} is missing: set INSTORE_MODELS (see README)")
    os.environ["INSTORE_MODELS"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    folder = SHARED_DATA / "faces"
    if not folder.is_dir():
        pytest.fail(f"photo folder {folder} is missing (../shared/data from the repo)")
    return folder


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
