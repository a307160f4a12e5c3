"""``instore cloud ...``: run the cloud API and the ingest worker in one process.

Heavy imports (FastAPI, uvicorn, onnxruntime) happen inside the command so that ``instore --help``
and the other wings' commands start fast. Operator mistakes (a malformed broker URL, a broker that
does not answer, missing model files) end with one readable line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(no_args_is_help=True)

USAGE_ERROR = 2


@app.command()
def serve(
    db: Annotated[Path, typer.Option("--db", help="SQLite file; created on first start")],
    broker: Annotated[
        str | None, typer.Option("--broker", help="mqtt://host:port[?protocol=3.1.1]; omit for API only")
    ] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    pack: Annotated[str | None, typer.Option("--pack", help="face model pack for enrolment photos")] = None,
    share_group: Annotated[
        str | None, typer.Option("--share-group", help="MQTT shared-subscription group, for several cloud workers")
    ] = None,
    card_ttl: Annotated[
        int, typer.Option("--card-ttl", min=5, max=3600, help="seconds a guide card stays valid")
    ] = 120,
) -> None:
    """Serve the HTTP API and, with --broker, turn arrivals into guide cards."""
    import uvicorn
    from pydantic import ValidationError

    from cloud.api.app import create_app
    from cloud.runtime import Runtime
    from cloud.settings import Settings
    from protocol.facepack import PackError, get_pack
    from protocol.topics import TopicError
    from protocol.transport import BrokerUrlError

    try:
        settings = Settings(
            db_path=db, broker_url=broker, pack_id=get_pack(pack).id, share_group=share_group, card_ttl_s=card_ttl
        )
        runtime = Runtime.open(settings)
    except (BrokerUrlError, PackError, TopicError, ValidationError) as exc:
        _fail(str(exc))
    try:
        runtime.start()
    except ConnectionError as exc:
        runtime.close()
        _fail(str(exc))
    try:
        uvicorn.run(create_app(settings, runtime), host=host, port=port, log_config=None)
    finally:
        runtime.close()


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(USAGE_ERROR)
