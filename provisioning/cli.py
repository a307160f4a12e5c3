"""The one ``instore`` command: a sub-command group per wing, plus the whole-store demo.

Each wing's CLI module imports its heavy dependencies inside its commands, so ``instore kiosk``
does not load the cloud's web stack and ``instore --help`` starts fast.
"""

from __future__ import annotations

import logging
import os

import typer

from cloud.cli import app as cloud_app
from edge.cli import app as edge_app
from kiosk.label_gateway.cli import app as esl_app
from kiosk.cli import main as kiosk_main
from provisioning.demo import demo
from provisioning.packs import app as models_app
from provisioning.provision_cli import app as provision_app

app = typer.Typer(help="In-store edge + cloud customer data platform.", no_args_is_help=True)
app.add_typer(cloud_app, name="cloud", help="The cloud CDP: API and ingest.")
app.add_typer(edge_app, name="edge", help="The in-store edge box: cameras to arrivals.")
app.add_typer(models_app, name="models", help="Face model packs: list, verify, install.")
app.add_typer(provision_app, name="provision", help="Certificates, device registry, install bundles, broker ACLs.")
app.add_typer(esl_app, name="esl", help="E-shelf labels: the in-store gateway to an OpenEPaperLink AP.")
app.command("kiosk", help="The guide big-screen of one store.")(kiosk_main)
app.command("demo", help="A whole store on one machine: broker, cloud, edge and guide screen.")(demo)


@app.callback()
def _logging(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else os.environ.get("INSTORE_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
