"""``python -m kiosk``: the guide screen without the root ``instore`` CLI (tests, a bare screen PC)."""

import logging
import os

import typer

from kiosk.cli import main

logging.basicConfig(
    level=os.environ.get("INSTORE_LOG", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
typer.run(main)
