"""The one ``instore`` command: a sub-command group per wing, plus the whole-store demo.

A wing's CLI module is imported only when its command runs (or its ``--help`` is asked for):
``instore --help`` lists the wings from the names and help texts below, so ``instore edge ...``
never imports the cloud's or the kiosk's modules. Each wing's CLI module in turn imports its heavy
dependencies inside its commands, so ``instore edge --help`` loads neither FastAPI nor Qt, and a
box installed with one role's extra (``pip install 'instore[edge]'``) runs its own commands; a
command of a role that is not installed says which extra to install.
"""

from __future__ import annotations

import importlib
import logging
import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

#: (command, "module:attribute", help). The attribute is a Typer app (a group) or a function (one command).
WINGS: tuple[tuple[str, str, str], ...] = (
    ("cloud", "cloud.cli:app", "The cloud CDP: API and ingest."),
    ("edge", "edge.cli:app", "The in-store edge box: cameras to arrivals."),
    ("models", "provisioning.packs:app", "Face model packs: list, verify, install."),
    ("provision", "provisioning.provision_cli:app", "Certificates, device registry, install bundles, broker ACLs."),
    ("esl", "kiosk.label_gateway.cli:app", "E-shelf labels: the in-store gateway to an OpenEPaperLink AP."),
    ("kiosk", "kiosk.cli:main", "The guide big-screen of one store."),
    ("demo", "provisioning.demo:demo", "A whole store on one machine: broker, cloud, edge and guide screen."),
)

#: Top-level modules of each role's extra (pyproject.toml), to name the extra when one is missing.
EXTRA_OF_MODULE = {
    **dict.fromkeys(("cv2", "insightface", "onnxruntime", "sqlite_utils", "psutil", "scapy", "prometheus_client"), "edge"),
    **dict.fromkeys(("fastapi", "starlette", "uvicorn", "multipart", "psycopg", "psycopg_pool", "faiss",
                      "pydantic_settings"), "cloud"),
    **dict.fromkeys(("PySide6", "shiboken6", "segno", "PIL"), "kiosk"),
    "amqtt": "demo",
}
ROLE_OF_WING = {"cloud": "cloud", "edge": "edge", "kiosk": "kiosk", "esl": "kiosk", "demo": "demo"}

PACKAGE = "instore"


class _Wing(TyperCommand):
    """A wing's place in ``instore --help`` before its module is imported."""

    def __init__(self, name: str, target: str, help: str) -> None:
        super().__init__(name, help=help)
        self.target = target

    def load(self) -> Any:  # a command of typer's own (vendored) click
        module, _, attribute = self.target.partition(":")
        obj = getattr(importlib.import_module(module), attribute)
        # Mounted the way ``add_typer``/``command`` on the top-level app mounts it: no completion options.
        outer = typer.Typer(add_completion=False)
        outer.callback()(lambda: None)
        if isinstance(obj, typer.Typer):
            outer.add_typer(obj, name=self.name, help=self.help)
        else:
            outer.command(self.name, help=self.help)(obj)
        group = typer.main.get_command(outer)
        assert isinstance(group, TyperGroup)
        return group.commands[self.name or ""]


def _refuse(wing: str | None, exc: ModuleNotFoundError) -> NoReturn:
    """Name the extra that brings a missing module of a role's stack; anything else propagates."""
    root = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(root)
    if extra is None:
        raise exc
    extra = ROLE_OF_WING.get(wing or "", extra)
    typer.echo(
        f"instore {wing}: the Python module {root!r} is not installed; this role needs the "
        f"'{extra}' extra: pip install 'instore[{extra}]' (in a development checkout: uv sync)",
        err=True,
    )
    raise typer.Exit(1) from None


class _Wings(TyperGroup):
    """The top-level group: wings are listed from ``WINGS`` and imported on use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, target, help in WINGS:
            self.add_command(_Wing(name, target, help))

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> tuple[str | None, Any, list[str]]:  # type: ignore[override]
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Wing):
            try:
                command = command.load()
            except ModuleNotFoundError as exc:
                _refuse(command.name, exc)
            self.commands[command.name or ""] = command
        return name, command, rest

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            _refuse(ctx.invoked_subcommand, exc)


def package_version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # a source tree run without installing (python -m provisioning)
        return "unknown (not installed)"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PACKAGE} {package_version()}")
        raise typer.Exit()


app = typer.Typer(cls=_Wings, help="In-store edge + cloud customer data platform.", no_args_is_help=True)


@app.callback()
def _logging(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the installed version and exit"
    ),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else os.environ.get("INSTORE_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
