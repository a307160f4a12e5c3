"""A private PostgreSQL 15 for benchmarks, configured the way ``instore provision database-config``
recommends, so a benchmark measures on a server sized for the brand without touching the shared
system server at 127.0.0.1:5432.

    uv run python bench/pg_server.py start --dir /work/pgsized --memory 8GiB   # last line: JSON with "url"
    uv run python bench/brand_to_postgres.py brand1m.db postgresql://postgres@127.0.0.1:PORT
    uv run python bench/cdp_scale.py --existing --db postgresql://postgres@127.0.0.1:PORT/NAME ...
    uv run python bench/pg_server.py stop --dir /work/pgsized

``start`` makes the cluster on first use (Debian's ``/usr/lib/postgresql/15/bin/initdb``: superuser
``postgres``, trust authentication, UTF8 with the C.UTF-8 locale like the system server) and starts
it with ``pg_ctl``; the server stays up after the command returns. Under ``--dir``: ``data/`` (the
cluster; ~2x a brand's SQLite file after a copy, so put it on /work, not /tmp), ``socket/`` (its unix
socket), ``server.log``, ``server.json`` (the URL). The fragment from ``provisioning.database_config``
for ``--memory/--cores/--storage/--processes`` is written to ``data/instore-recommended.conf`` and
included at the end of ``postgresql.conf``, followed by ``data/instore-server.conf`` (listen on
127.0.0.1 only, the port, the socket directory). Each ``start`` writes both again, so a restart with
another ``--memory`` resizes the server, and reuses the previous port when it is still free. The URL
is ``postgresql://postgres@127.0.0.1:PORT``; tests use ``private_server()``, which does the same in a
temporary directory and removes it afterwards.

Running as root (as on the benchmark machines): initdb and postgres refuse root ("cannot be run as
root"), so every PostgreSQL binary runs as the ``postgres`` OS user (the one Debian's package
makes) through ``runuser -u postgres -- BINARY ...`` (util-linux; root needs no password, and no
shell quoting is involved as with ``su postgres -c``), with the working directory set to ``--dir``
(the user cannot enter /root). ``--dir`` is created and chowned to that user, and every directory
above it must let it through (/work and /tmp do: mode 755 and 1777). Run as any other user, the
binaries run as that user and the superuser is still named ``postgres``. Checked here: 2 cores,
Debian 12, PostgreSQL 15.20, running as root.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioning.database_config import DatabaseConfigError, Machine, fragment, machine, recommend, values

BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"
FRAGMENT = "instore-recommended.conf"
SERVER_CONF = "instore-server.conf"
#: seconds pg_ctl waits for a start (crash recovery may replay max_wal_size of WAL) or a stop (a checkpoint)
WAIT_S = 600


class PgServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    dir: str
    data: str
    log: str
    settings: dict[str, str]


def unavailable() -> str | None:
    """Why a private server cannot be started here, or None when it can."""
    missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (BIN / name).is_file()]
    if missing:
        return f"PostgreSQL 15's {', '.join(missing)} not in {BIN} (Debian: apt-get install postgresql-15)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root needs a {OS_USER!r} OS user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root needs runuser (util-linux) to run PostgreSQL as another user"
    return None


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str], cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(_as_server_user(args), cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise PgServerError(f"{Path(args[0]).name} failed ({result.returncode}): {(result.stderr or result.stdout).strip()}")
    return result


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _any_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _paths(directory: Path) -> tuple[Path, Path, Path, Path]:
    """data, socket, log and server.json under the directory."""
    return directory / "data", directory / "socket", directory / "server.log", directory / "server.json"


def running(directory: Path) -> bool:
    data = _paths(directory)[0]
    return (data / "PG_VERSION").is_file() and _run([str(BIN / "pg_ctl"), "status", "-D", str(data)], directory,
                                                    check=False).returncode == 0


def start(directory: Path, spec: Machine) -> Server:
    """Make (first time) and start the server under ``directory``; refuse if one is running there."""
    if reason := unavailable():
        raise PgServerError(reason)
    directory = directory.resolve()
    data, sock, log, info = _paths(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _own(directory)
    if _run(["test", "-w", str(directory)], Path("/"), check=False).returncode != 0:
        raise PgServerError(f"the {OS_USER} OS user cannot write {directory}: let it through every directory above")
    if running(directory):
        raise PgServerError(f"a server is already running on {directory}: `stop --dir {directory}` first")
    if data.exists() and not (data / "PG_VERSION").is_file() and any(data.iterdir()):
        raise PgServerError(f"{data} is neither empty nor a PostgreSQL data directory")
    if not (data / "PG_VERSION").is_file():
        _run([str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
              "--locale=C.UTF-8", "--no-instructions"], directory)
    sock.mkdir(exist_ok=True)
    _own(sock)
    previous = json.loads(info.read_text())["port"] if info.is_file() else None
    port = previous if previous and _free(previous) else _any_port()
    settings = recommend(spec)
    _write(data / FRAGMENT, fragment(spec, settings))
    _write(data / SERVER_CONF, f"# bench/pg_server.py: this private server's address\nlisten_addresses = '127.0.0.1'\n"
                               f"port = {port}\nunix_socket_directories = '{sock}'\n")
    conf = data / "postgresql.conf"
    includes = f"include '{FRAGMENT}'\ninclude '{SERVER_CONF}'\n"
    if includes not in conf.read_text():
        with conf.open("a") as f:
            f.write(f"\n# bench/pg_server.py: the CDP's recommended settings, then this server's address\n{includes}")
    result = _run([str(BIN / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", str(WAIT_S)],
                  directory, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.is_file() else []
        raise PgServerError(f"pg_ctl start failed ({result.returncode}): {result.stderr.strip()} {' | '.join(tail)}")
    server = Server(url=f"postgresql://postgres@127.0.0.1:{port}", port=port, dir=str(directory), data=str(data),
                    log=str(log), settings=values(settings))
    info.write_text(json.dumps(asdict(server), indent=1) + "\n")
    return server


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    _own(path)


def stop(directory: Path) -> bool:
    """Stop the server under ``directory`` (fast shutdown: sessions ended, a checkpoint); False if none ran."""
    directory = directory.resolve()
    if not running(directory):
        return False
    _run([str(BIN / "pg_ctl"), "stop", "-D", str(_paths(directory)[0]), "-m", "fast", "-w", "-t", str(WAIT_S)],
         directory)
    return True


@contextmanager
def private_server(spec: Machine, directory: Path | None = None) -> Iterator[Server]:
    """A running private server for the ``with`` block; stopped afterwards, and a temporary
    directory (when none is given) removed."""
    temporary = directory is None
    where = Path(tempfile.mkdtemp(prefix="instore-pg-")) if directory is None else directory
    try:
        server = start(where, spec)
        try:
            yield server
        finally:
            stop(where)
    finally:
        if temporary:
            shutil.rmtree(where, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("start", help="make (first time) and start the server; JSON with its URL last")
    up.add_argument("--dir", type=Path, required=True, help="where data/, socket/ and server.log go")
    up.add_argument("--memory", default=None, help="RAM the server may count on, e.g. 8GiB (default: this machine's)")
    up.add_argument("--cores", type=int, default=None, help="cores it may use (default: this machine's)")
    up.add_argument("--storage", default="ssd", help="ssd | hdd: what --dir is on")
    up.add_argument("--processes", type=int, default=4, help="CDP processes that will connect (max_connections)")
    down = commands.add_parser("stop", help="stop the server under --dir")
    down.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    began = time.monotonic()
    try:
        if args.command == "stop":
            stopped = stop(args.dir)
            print(json.dumps({"dir": str(args.dir.resolve()), "stopped": stopped}))
            return 0
        spec = machine(args.memory, args.cores, args.storage, args.processes)
        server = start(args.dir, spec)
    except (PgServerError, DatabaseConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"PostgreSQL running on {server.url} (data {server.data}, log {server.log}); "
          f"stop: python bench/pg_server.py stop --dir {server.dir}", file=sys.stderr)
    print(json.dumps({**asdict(server), "machine": spec.model_dump(), "seconds": round(time.monotonic() - began, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
