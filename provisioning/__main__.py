"""``python -m provisioning`` is ``instore``: the demo starts the wings this way as processes."""

from provisioning.cli import app

app(prog_name="instore")
