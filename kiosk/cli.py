"""``instore kiosk``: run the guide big-screen of one store.

Options are checked here, before Qt is loaded, so a typo in the broker URL or a store id fails at
once with a usage error (exit code 2) instead of a screen that silently never connects.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from protocol import topics
from protocol.transport import BrokerUrl, BrokerUrlError

_SIZE = re.compile(r"^(\d{3,5})x(\d{3,5})$")
#: The claim pick list is one screen of big buttons, three to a row.
MAX_ASSISTANTS = 12
MAX_ASSISTANT_NAME = 12


def _broker(value: str) -> str:
    try:
        BrokerUrl.parse(value)
    except BrokerUrlError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def _identifier(kind: str):
    def check(value: str) -> str:
        try:
            return topics.check_id(kind, value)
        except topics.TopicError as exc:
            raise typer.BadParameter(str(exc)) from None

    return check


def _size(value: str) -> str:
    if not _SIZE.match(value):
        raise typer.BadParameter(f"{value!r} must be WIDTHxHEIGHT, e.g. 1920x1080 or 1080x1920")
    return value


def _assistants(values: list[str] | None) -> list[str]:
    names = [value.strip() for value in values or []]
    for name in names:
        if not 1 <= len(name) <= MAX_ASSISTANT_NAME:
            raise typer.BadParameter(f"assistant name {name!r} must be 1-{MAX_ASSISTANT_NAME} characters")
    if len(set(names)) != len(names):
        raise typer.BadParameter("an assistant is listed twice")
    if len(names) > MAX_ASSISTANTS:
        raise typer.BadParameter(f"at most {MAX_ASSISTANTS} assistants fit the pick list")
    return names


def _store_name(value: str | None) -> str | None:
    if value is not None and not 1 <= len(value.strip()) <= 40:
        raise typer.BadParameter("the store name must be 1-40 characters")
    return value.strip() if value else None


def _join_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "http://")):
        raise typer.BadParameter("the join page is an http(s) address, e.g. https://cloud.example.com/dash/join.html")
    return value


def _optional_store(value: str | None) -> str | None:
    return None if value is None else _identifier("store")(value)


def main(
    store: Annotated[
        str | None, typer.Option("--store", help="store id (required without --bundle)", callback=_optional_store)
    ] = None,
    broker: Annotated[
        str, typer.Option("--broker", help="mqtt://host:port, add ?protocol=3.1.1 for amqtt", callback=_broker)
    ] = "mqtt://127.0.0.1:1883",
    brand: Annotated[str, typer.Option("--brand", help="brand id", callback=_identifier("brand"))] = "demo",
    screen: Annotated[
        str, typer.Option("--screen", help="this screen's id within the store", callback=_identifier("screen"))
    ] = "main",
    screenshot: Annotated[
        Path | None, typer.Option("--screenshot", help="save a PNG of the window when exiting", dir_okay=False)
    ] = None,
    exit_after: Annotated[
        float | None, typer.Option("--exit-after", help="quit after this many seconds", min=0.0)
    ] = None,
    size: Annotated[
        str, typer.Option("--size", help="window size; 1080x1920 for a portrait screen", callback=_size)
    ] = "1920x1080",
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="install bundle (instore provision bundle): brand, store, screen and TLS broker"),
    ] = None,
    store_name: Annotated[
        str | None, typer.Option("--store-name", help="shown in the header, e.g. 上海静安嘉里中心店", callback=_store_name)
    ] = None,
    assistant: Annotated[
        list[str] | None,
        typer.Option("--assistant", callback=_assistants,
                     help="an assistant who claims members and signs in here, by the staff file's id or name; repeat "
                          "for each"),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", envvar="INSTORE_SCREEN_METRICS_PORT", min=0, max=65535,
                     help="serve Prometheus /metrics (door-to-screen stage timings) on this port; default off"),
    ] = None,
    join_url: Annotated[
        str | None,
        typer.Option("--join-url", callback=_join_url,
                     help="the cloud's join page (https://…/dash/join.html): visitors get a card with 邀请入会"),
    ] = None,
) -> None:
    """Show arriving members to the shop assistants; print a JSON line per card shown."""
    from kiosk.guide_screen.app import Options, run
    from kiosk.guide_screen.feed import device_id

    url = BrokerUrl.parse(broker)
    if bundle is not None:
        brand, store, screen, url = _from_bundle(bundle)
    elif store is None:
        raise typer.BadParameter("give --store, or --bundle to take it from an install bundle", param_hint="'--store'")

    try:
        device_id(screen)
    except topics.TopicError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--screen'") from None
    width, height = (int(part) for part in size.split("x"))
    code = run(
        Options(
            url=url,
            brand=brand,
            store=store,
            screen=screen,
            width=width,
            height=height,
            screenshot=screenshot,
            exit_after_s=exit_after,
            assistants=tuple(assistant or ()),
            store_name=store_name,
            metrics_port=metrics_port,
            join_url=join_url,
        )
    )
    if code:
        raise typer.Exit(code)


def _from_bundle(path: Path) -> tuple[str, str, str, BrokerUrl]:
    """A guide screen's bundle names it ``kiosk-{screen}``; its broker URL carries the TLS files."""
    from protocol.bundle import BundleError, load_bundle

    try:
        loaded = load_bundle(path)
    except BundleError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--bundle'") from None
    config = loaded.config
    if config.role != "kiosk" or not config.device.startswith("kiosk-"):
        raise typer.BadParameter(f"bundle {path} is for a {config.role} ({config.device}), not a guide screen", param_hint="'--bundle'")
    warning = loaded.expiry_warning()
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    return config.brand, config.store, config.device.removeprefix("kiosk-"), loaded.broker
