"""``instore demo``: a whole store on one machine, from photos to the guide screen.

Starts a broker (embedded amqtt unless ``--broker``), the cloud, the guide screen, the store's ESL
gateway (against a simulated OpenEPaperLink access point) and an edge box as separate processes;
enrols sample members through the API; hangs shelf labels under the products the recommender
picks for them; replays sample frames through the edge; and, with ``--once``, prints one JSON line
of results last (``label_flashes``: LED flashes the access point received; ``dashboard_stores`` and
``open_alerts``: what HQ's dashboard lists, read through the API).

Unless ``--no-history``, the cloud's database is first seeded with a small synthetic brand
(``instore cloud generate``: the demo's store and a few others, five weeks of shop floor, rolled
up and scanned, three of the other stores with an incident planted yesterday), so the
dashboards at ``/dash/`` are full and HQ has anomalies to see; the demo's own arrivals then add to
its store's day. The seeding runs while the sample photos are prepared.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import typer

log = logging.getLogger("demo")

#: Shelf labels the demo hangs (under the products recommended most often to its members).
DEMO_LABELS = ("L-01", "L-02", "L-03", "L-04")
#: The demo's edge box: its visits are the demo's, whatever history the store has.
EDGE = "edge1"
#: The seeded brand history: small enough to take a few seconds, large enough for the health model
#: (five weeks give each day four earlier same weekdays to compare with) and for peer groups.
HISTORY = {"stores": 6, "members": 3000, "days": 35, "incidents": 3}


def default_faces() -> Path:
    """insightface ships sample photos, so a fresh machine needs no photo download."""
    import insightface

    return Path(insightface.__file__).parent / "data" / "images"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))], 1)


def demo(
    faces: Path | None = typer.Option(None, help="photo folder (default: insightface's sample images)"),
    broker: str | None = typer.Option(None, help="use this broker, e.g. mqtt://127.0.0.1:1883 (default: embedded)"),
    headless: bool = typer.Option(False, "--headless", help="render the guide screen offscreen"),
    once: bool = typer.Option(False, "--once", help="exit when the sample is done and print a JSON line"),
    enrol: int | None = typer.Option(None, help="how many sample people become members (default ~60%)"),
    screenshot: Path = typer.Option(Path("guide-screen.png"), help="where the guide screen's screenshot goes"),
    workdir: Path | None = typer.Option(None, help="keep the database, frames and logs here"),
    store: str = typer.Option("store1", help="store id"),
    brand: str = typer.Option("demo", help="brand id"),
    history: bool = typer.Option(True, "--history/--no-history",
                                 help="seed the cloud with a synthetic brand history for the dashboards"),
) -> None:
    from protocol import transport
    from provisioning.broker import EmbeddedBroker
    from provisioning.localstore import LocalStore, StoreError
    from provisioning.samples import build_sample

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call drowns the story
    faces = faces or default_faces()
    if not faces.is_dir():
        raise _fail(f"photo folder {faces} does not exist")
    if broker:
        try:
            transport.BrokerUrl.parse(broker)
        except transport.BrokerUrlError as exc:
            raise _fail(str(exc)) from None
    work = workdir or Path(tempfile.mkdtemp(prefix="instore-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    embedded = None if broker else EmbeddedBroker()
    local = None
    try:
        if embedded is not None:
            embedded.start()
            broker_url = embedded.url
        else:
            broker_url = str(broker)
        local = LocalStore(broker_url, work, brand=brand, store=store,
                           share_group="cdp" if broker else None, headless=headless)
        seeding = time.perf_counter()
        if history:
            local.start_history(**HISTORY)
        sample = build_sample(faces, work, enrol)
        log.info("sample: %d members, %d visitors, frames in %s", len(sample.enrolled), len(sample.visitors), sample.frames_dir)
        if history:
            seeded = local.wait_history()
            log.info("brand history: %d stores, %d floor days, %d incidents planted, %d alerts raised; generated in "
                     "%.1f s, rolled up in %.1f s, ready %.1f s after the start (alongside the sample)",
                     seeded["stores"], seeded["floor_days"], len(seeded["incidents"]), seeded["alerts"]["raised"],
                     seeded["seconds"], seeded["rollup"]["seconds"], time.perf_counter() - seeding)
        local.start_cloud()
        log.info("dashboards: %s/dash/ (store manager, HQ, live sales; sign in with an API key)", local.api_url)
        local.start_esl(DEMO_LABELS)  # starts while the members are enrolled
        members = [local.enrol(seed, person.enrol_photo, phone=f"1380013{number:04d}")
                   for number, (person, seed) in enumerate(sample.enrolled)]
        local.wait_ready("esl")  # subscribed before the labels are bound: the cloud draws each one as it is bound
        shelf = local.label_recommended(members, DEMO_LABELS)
        log.info("shelf labels: %s", ", ".join(f"{label} -> {sku}" for label, sku in shelf.items()))
        local.start_kiosk(screenshot.resolve())
        local.wait_kiosk_ready()
        edge = local.run_edge(sample.frames_dir, device=EDGE)
        arrivals = next(e for e in edge.events if e.get("event") == "summary")["arrivals"]
        result = _settle(local, arrivals, EDGE)
        if not once:
            typer.echo(json.dumps(result), err=True)
            typer.echo(f"dashboards at {local.api_url}/dash/", err=True)
            if history:
                typer.echo(f"the demo store's last full day: {_last_full_day(local)}", err=True)
            typer.echo("guide screen running; Ctrl-C to stop", err=True)
            while local.wings["kiosk"].proc.poll() is None:
                time.sleep(0.5)
    except (StoreError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        result = None
    finally:
        if local is not None:
            local.stop()
        if embedded is not None:
            embedded.stop()
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if once and result is not None:
        log.info("guide screen screenshot: %s", screenshot.resolve())
        typer.echo(json.dumps(result))


def _last_full_day(local) -> str:
    """The store page on yesterday: today in China time may still be before opening (the seeded
    floor stops at the demo's start), while yesterday is a whole trading day with its incidents."""
    from datetime import timedelta

    from cloud import clock

    yesterday = clock.now_local(clock.DEFAULT_TZ).date() - timedelta(days=1)
    return f"{local.api_url}/dash/store.html?store={local.store}&day={yesterday.isoformat()}"


def _settle(local, arrivals: int, device: str, timeout: float = 60.0) -> dict:
    """Wait until the cloud has a visit for every arrival of the edge ``device`` and the screen has
    shown every card."""
    deadline = time.monotonic() + timeout
    visits: list[dict] = []
    while time.monotonic() < deadline:
        visits = local.visits(device)
        if len(visits) >= arrivals:
            break
        time.sleep(0.2)
    matched = sum(v["member_id"] is not None for v in visits)
    kiosk = local.wings["kiosk"]
    shown = lambda events: [e for e in events if e.get("event") == "card_shown"]  # noqa: E731
    kiosk.wait_events(lambda events: len(shown(events)) >= len(visits), max(1.0, deadline - time.monotonic()))
    cards = shown(kiosk.events)
    return {
        "arrivals": arrivals,
        "matched": matched,
        "visitors": len(visits) - matched,
        "cards": len(cards),
        "p95_door_to_screen_ms": percentile([c["door_to_screen_ms"] for c in cards], 95),
        "label_flashes": _flashes_settled(local, deadline),
        **local.health_overview(),
    }


def _flashes_settled(local, deadline: float, quiet_s: float = 1.0) -> int:
    """LED flashes the simulated access point received, once none came for ``quiet_s``: the cloud
    sends them right after each card, and the gateway needs a loopback HTTP call for each."""
    flashes = local.access_point.flashes
    seen, since = len(flashes), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.1)
        if len(flashes) != seen:
            seen, since = len(flashes), time.monotonic()
    return seen


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)
