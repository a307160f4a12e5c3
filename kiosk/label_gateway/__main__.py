"""``python -m kiosk.label_gateway``: the ESL gateway without the root ``instore`` CLI (tests, a bare gateway PC)."""

import logging
import os

from kiosk.label_gateway.cli import app

logging.basicConfig(
    level=os.environ.get("INSTORE_LOG", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
app()
