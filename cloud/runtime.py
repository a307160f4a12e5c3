"""The cloud's long-lived parts, wired once and shared by the API and the ingest worker.

Building them outside the web app lets the CLI fail fast with a plain message (bad broker URL,
unreachable broker, missing model files) before uvicorn starts, and lets tests share one loaded
face engine across many apps.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from cloud.activation import audience, journeys
from cloud.activation import erasure as activation_erasure
from cloud.activation import schema as activation_schema
from cloud.activation.ecoupon import CouponChannel
from cloud.activation.expiry_notices import ExpiryNoticeSender
from cloud.activation.guide_task import GuideTaskChannel
from cloud.activation.sender import CampaignSender
from cloud.api import tables as api_tables
from cloud.arrivals import joining, staff, till
from cloud.arrivals import schema as arrivals_schema
from cloud.arrivals.cards import CardBuilder
from cloud.arrivals.ingest import EventProcessor, IngestWorker
from cloud.cdp import erasure, members, profile_rewrite, tags
from cloud.cdp import schema as cdp_schema
from cloud.channels import alerting as alert_channels
from cloud.channels.wechat import WeChatSubscribeChannel
from cloud.clock import utcnow
from cloud.db import Database, Schema, open_database
from cloud.faces import learning, reembed
from cloud.faces import schema as faces_schema
from cloud.faces.enrolment import Enroller
from cloud.faces.gallery import FaceIndex
from cloud.faces.matching import Matcher
from cloud.fleet import schema as fleet_schema
from cloud.fleet.commands import CommandSender
from cloud.fleet.rollout import service as rollouts
from cloud.fleet.upkeep import Upkeep
from cloud.guide import catalogue
from cloud.guide import schema as guide_schema
from cloud.guide.recommend import service as recommend
from cloud.health import alerts as health_alerts
from cloud.health import anomaly, device_health, notify, shortfall
from cloud.health import schema as health_schema
from cloud.health.alert_sender import AlertSender
from cloud.health.alerts import Alert
from cloud.health.service import HealthService
from cloud.loyalty import erasure as loyalty_erasure
from cloud.loyalty import ledger
from cloud.loyalty import schema as loyalty_schema
from cloud.loyalty.service import LoyaltyService
from cloud.masterdata import schema as masterdata_schema
from cloud.pricing import schema as pricing_schema
from cloud.pricing.label_flash import ArrivalFlasher
from cloud.pricing.markdown_runner import MarkdownService
from cloud.pricing.shelf import LabelSync
from cloud.scheduler import Scheduler
from cloud.settings import Settings
from protocol.facepack import PackError, get_pack, require_commercial
from protocol.facepack.engine import FaceEngine
from protocol.transport import BrokerUrl

log = logging.getLogger(__name__)

#: Every feature's tables, in the order each schema version runs them: a feature may reference the
#: tables of those before it (everything references the CDP's ``members``).
SCHEMAS: tuple[Schema, ...] = (
    cdp_schema.SCHEMA, faces_schema.SCHEMA, arrivals_schema.SCHEMA, fleet_schema.SCHEMA, guide_schema.SCHEMA,
    health_schema.SCHEMA, pricing_schema.SCHEMA, api_tables.SCHEMA, masterdata_schema.SCHEMA,
    loyalty_schema.SCHEMA, activation_schema.SCHEMA,
)


def open_cdp(location: str | Path, *, sample_catalogue: bool = True) -> Database:
    """Open the CDP's database and migrate every feature's tables; the first start seeds the sample
    catalogue (``sample_catalogue=False`` for the CLI's data commands, which must not)."""
    db = open_database(location, SCHEMAS)
    if sample_catalogue:
        catalogue.seed_sample(db)
    return db


def register_order_hooks() -> None:
    """What runs after every landed batch of streamed or till orders (``till.ORDER_HOOKS``): journeys'
    buyers exit, then the points ledger posts the sales and refunds. Once each however often it is
    called; the runtime calls it, and so does a bench that lands orders in process."""
    for hook in (journeys.on_orders, ledger.post_landed):
        if hook not in till.ORDER_HOOKS:
            till.ORDER_HOOKS.append(hook)


class Runtime:
    """With a broker: one MQTT connection (the ingest worker's client, which guide cards, edge
    commands, health alerts and label redraws are all published on) and one scheduler thread
    (health rollup and anomaly scan, command re-sends, rollouts, telemetry pruning, markdowns, label
    redraws).
    Without one (API only): the scheduler still runs the jobs that need no broker (health rollup,
    device and source health, alert delivery, campaign sends, journeys, loyalty postings and expiry)."""

    def __init__(
        self, settings: Settings, db: Database, index: FaceIndex, enroller: Enroller, ingest: IngestWorker | None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.index = index
        self.enroller = enroller
        self.ingest = ingest
        self.scheduler = Scheduler()
        # the periodic rollup, then the anomaly scan
        self.health = HealthService(db, interval_s=settings.health_every_s, after_rollup=self.scan_alerts)
        self.health.schedule(self.scheduler)
        # devices offline or silent within minutes; alerts routed to their owners' channels
        self.channels = alert_channels.from_settings(settings)
        self.scheduler.every("device-health", settings.device_health_every_s, self.check_devices)
        self.scheduler.every("source-health", settings.source_health_every_s, self.check_sources)
        self.scheduler.every("alert-notify", settings.notify_every_s, self.notify_alerts)
        # campaigns: due marketing sends over the same channel adapters (SMS, WeCom to the guide, email)
        marketing = {"sms": self.channels.get("sms"), "wecom": self.channels.get("wecom_app"),
                     "email": self.channels.get("email")}
        if settings.wechat_appid and settings.wechat_secret:
            marketing["wechat"] = WeChatSubscribeChannel(settings.wechat_api, settings.wechat_appid,
                                                         settings.wechat_secret, state=settings.wechat_state)
        marketing["coupon"] = CouponChannel(db)
        if ingest is not None:  # a task on the guide screens of the member's home store; 完成 comes back
            tasks = GuideTaskChannel(db, ingest.client)
            marketing["guide_task"] = tasks
            ingest.processor.task_done = tasks.completed
            # every screen of the store shows who is on its floor, whichever screen they signed in on
            client = ingest.client
            ingest.processor.staff_signed = lambda sign: staff.publish_floor(client, db, sign)
        configured = {k: v for k, v in marketing.items() if v is not None}
        self.campaigns = CampaignSender(db, configured, link_base=settings.dashboard_url)
        self.scheduler.every("campaign-send", 5.0, self.send_campaigns)
        # audience syncs: each segment's hashed upload file rebuilt when its interval has passed
        self.scheduler.every("audience-refresh", 300.0, lambda: audience.refresh_due(db))
        # journeys: triggers (visits on every tick, the rest daily), due steps; buyers exit as orders land
        self.scheduler.every("journeys", 10.0, self.run_journeys)
        register_order_hooks()  # journeys: buyers exit as their orders land; points post
        # points about to expire: told over the consented channels, outside quiet hours
        self.expiry_notices = ExpiryNoticeSender(db, configured)
        self.scheduler.every("points-notices", 300.0, self.expiry_notices.run)
        # points: a catch-up pass, expiry and notices on the scheduler (landed orders post through the hooks)
        # erasure reaches the features above the CDP, in its own transaction
        for forget in (loyalty_erasure.forget, activation_erasure.forget, till.forget):
            if forget not in erasure.ERASE_HOOKS:
                erasure.ERASE_HOOKS.append(forget)
        LoyaltyService(db).schedule(self.scheduler)
        self.commands: CommandSender | None = None
        self.alert_sender: AlertSender | None = None
        self.markdown: MarkdownService | None = None
        self.labels: LabelSync | None = None
        if ingest is not None:
            self.commands = CommandSender(db, ingest.client, retry_s=settings.command_retry_s,
                                          max_retry_s=settings.command_retry_max_s)
            self.alert_sender = AlertSender(ingest.client)
            # re-sends unacknowledged commands, advances rollouts, prunes telemetry
            Upkeep(db, self.commands, tick_s=min(5.0, settings.command_retry_s / 2, settings.rollout_check_s),
                   rollout_every_s=settings.rollout_check_s).schedule(self.scheduler)
            # perishables markdown: a first pass at start, then every markdown_every_s
            self.markdown = MarkdownService(
                db, ingest.client, every_s=settings.markdown_every_s,
                max_changes_per_day=settings.markdown_max_changes_per_day, elasticity=settings.markdown_elasticity)
            self.markdown.schedule(self.scheduler)
            # every bound label drawn with its product, price, member price and markdown, and redrawn on change
            self.labels = LabelSync(db, ingest.client, every_s=settings.label_sync_every_s)
            self.labels.schedule(self.scheduler)
            # member arrivals' faces held for an assistant's confirmation, dropped after a day unanswered
            self.scheduler.every("held-faces", learning.EXPIRE_EVERY_S, lambda: learning.expire(db))
        # a change of the survivorship rules: every stored profile rewritten, a batch at a time
        self.scheduler.every("profile-rewrite", 2.0, lambda: profile_rewrite.run(db))
        self._started = False

    @classmethod
    def open(cls, settings: Settings, *, engine: FaceEngine | None = None) -> Runtime:
        """Wire everything without touching the network. Raises BrokerUrlError or PackError."""
        broker = BrokerUrl.parse(settings.broker_url) if settings.broker_url else None
        pack = get_pack(settings.pack_id)
        if settings.commercial_only:
            require_commercial(pack)  # NotCommercialError (a PackError): a paying brand never enrols with a research pack
        if engine is None:
            engine = FaceEngine.load(pack.id)
        elif engine.pack.id != pack.id:
            raise ValueError(f"the face engine runs pack {engine.pack.id}, settings say {pack.id}")
        db = open_cdp(settings.db)
        index = FaceIndex.from_database(db, pack.recogniser.embedding_space, pack.recogniser.embedding_dim,
                                        template_mode=pack.template_mode)
        enroller = Enroller(engine, db, index)
        ingest = None
        if broker is not None:
            processor = EventProcessor(
                db, Matcher(index, db, pack, commercial_only=settings.commercial_only), CardBuilder(db, ttl_s=settings.card_ttl_s),
                join_window_s=settings.wifi_join_window_s, require_known_devices=settings.require_known_devices,
                enroller=enroller,
            )
            ingest = IngestWorker(
                processor, broker, client_id=settings.client_id, card_ttl_s=settings.card_ttl_s,
                session_expiry_s=settings.session_expiry_s,
                share_group=settings.share_group, flasher=ArrivalFlasher(db),
            )
        return cls(settings, db, index, enroller, ingest)

    def start(self) -> None:
        """Connect to the broker, if there is one, and start the scheduler. Raises ConnectionError."""
        if self.ingest is not None:
            recommend.warm(self.db)  # the first card must not wait for the model build
            self.ingest.start()
            self._started = True
            self.send_commands()  # what was queued while no cloud process was connected
        self.scheduler.start()

    def close(self) -> None:
        self.scheduler.stop()  # no job publishes on a closing connection
        self.campaigns.close()
        if self._started and self.ingest is not None:
            self.ingest.stop()
        self._started = False
        self.db.close()

    def check_devices(self, now: datetime | None = None) -> tuple[list[Alert], list[str]]:
        """Device health: raise alerts for devices offline or silent in open stores, clear those back."""
        raised, cleared = device_health.scan(self.db, now or utcnow(), stale_s=self.settings.device_stale_s)
        if self._started and self.alert_sender is not None:
            health_alerts.publish_pending(self.db, self.alert_sender)
        return raised, cleared

    def check_sources(self, now: datetime | None = None) -> tuple[list[Alert], list[str]]:
        """The hourly business rule: raise alerts for sources dark or collapsing in open stores, clear those back."""
        raised, cleared = shortfall.scan(self.db, now or utcnow())
        if self._started and self.alert_sender is not None:
            health_alerts.publish_pending(self.db, self.alert_sender)
        return raised, cleared

    def notify_alerts(self, now: datetime | None = None) -> notify.NotifyResult:
        """Route open alerts to their owners, escalate unacknowledged critical ones, send what is due."""
        s = self.settings
        return notify.run(self.db, self.channels, now or utcnow(), escalate_after_s=s.alert_escalate_after_s,
                          dedup_s=s.alert_dedup_s, link_base=s.dashboard_url.rstrip("/"))

    def send_campaigns(self) -> None:
        """Settle sends a dead process left half-done, then send what is due."""
        self.campaigns.reconcile()
        self.campaigns.run()

    def run_journeys(self, now: datetime | None = None) -> dict[str, int]:
        """Enter who the triggers found, run the steps that are due (sends queue for the campaign sender)."""
        return journeys.tick(self.db, now=now)

    def scan_alerts(self, now: datetime) -> list[Alert]:
        """The anomaly scan after each health rollup; alerts go out on MQTT while connected."""
        return anomaly.scan(self.db, self.alert_sender if self._started else None, now)

    def join(self, token: str, verification_id: str, code: str, *, face: bool,
             marketing: dict[str, bool]) -> joining.Joined:
        """A visitor joined on their phone (入会): the screen's visitor card becomes their member card,
        and with face consent the screen is asked for the live crop (``cloud.arrivals.joining``)."""
        joined = joining.confirm(self.db, token, verification_id, code, face=face, marketing=marketing)
        tags.refresh(self.db, [joined.person_id])  # an existing member's stats now include the sign-up
        if self._started and self.ingest is not None and joined.visit is not None:
            member = members.member(self.db, joined.person_id)
            if member is not None:
                self.ingest.publish(CardBuilder(self.db, ttl_s=self.settings.card_ttl_s).joined(joined.visit, member))
            self.send_commands()
        return joined

    def erase(self, member_id: str, *, actor: str) -> erasure.Erased:
        """Erase a person, drop their faces from this process's gallery and tell every edge box."""
        erased = erasure.erase(self.db, member_id, actor=actor)
        self.after_face_removal()
        return erased

    def start_rollout(self, *, pack_id: str, **rollout: Any) -> dict:
        """Start a pack rollout, the gallery carried over first: members are re-embedded for the pack's
        embedding space (``cloud.faces.reembed``) before any box is sent it, so switched boxes still
        name members. The response carries what was re-embedded and who could not be (and why)."""
        pack = rollouts.check_pack(pack_id, commercial_only=self.settings.commercial_only)

        def engine() -> FaceEngine:
            try:
                return FaceEngine.load(pack.id)
            except PackError as exc:
                raise rollouts.RolloutError(f"the gallery cannot be re-embedded for {pack.id}: {exc}") from None

        carried = reembed.carry_over(self.db, pack, engine)
        log.info("gallery carried over to %s: %s", pack.id, carried.as_dict())
        started = rollouts.create(self.db, pack_id=pack.id, commercial_only=self.settings.commercial_only, **rollout)
        return {**started, "gallery": carried.as_dict()}

    def after_face_removal(self) -> None:
        self.index.refresh()
        self.send_commands()

    def send_commands(self) -> None:
        """Publish queued edge commands now rather than at the next upkeep tick."""
        if self.commands is not None and self._started:
            self.commands.flush()
