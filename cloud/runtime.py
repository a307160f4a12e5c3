"""The cloud's long-lived parts, wired once and shared by the API and the ingest worker.

Building them outside the web app lets the CLI fail fast with a plain message (bad broker URL,
unreachable broker, missing model files) before uvicorn starts, and lets tests share one loaded
face engine across many apps.
"""

from __future__ import annotations

from cloud.cards import CardBuilder
from cloud.enrol import Enroller
from cloud.faceindex import FaceIndex
from cloud.ingest import ArrivalProcessor, IngestWorker
from cloud.matching import Matcher
from cloud.settings import Settings
from cloud.store import Store
from protocol.facepack import get_pack
from protocol.facepack.engine import FaceEngine
from protocol.transport import BrokerUrl


class Runtime:
    def __init__(
        self, settings: Settings, store: Store, index: FaceIndex, enroller: Enroller, ingest: IngestWorker | None
    ) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.enroller = enroller
        self.ingest = ingest
        self._started = False

    @classmethod
    def open(cls, settings: Settings, *, engine: FaceEngine | None = None) -> "Runtime":
        """Wire everything without touching the network. Raises BrokerUrlError or PackError."""
        broker = BrokerUrl.parse(settings.broker_url) if settings.broker_url else None
        pack = get_pack(settings.pack_id)
        if engine is None:
            engine = FaceEngine.load(pack.id)
        elif engine.pack.id != pack.id:
            raise ValueError(f"the face engine runs pack {engine.pack.id}, settings say {pack.id}")
        store = Store(settings.db_path)
        index = FaceIndex.from_store(store, pack.recogniser.embedding_space, pack.recogniser.embedding_dim)
        ingest = None
        if broker is not None:
            processor = ArrivalProcessor(
                store, Matcher(index, store, pack), CardBuilder(store, ttl_s=settings.card_ttl_s)
            )
            ingest = IngestWorker(
                processor, broker, client_id=settings.client_id, card_ttl_s=settings.card_ttl_s,
                share_group=settings.share_group,
            )
        return cls(settings, store, index, Enroller(engine, store, index), ingest)

    def start(self) -> None:
        """Connect the ingest worker, if there is one. Raises ConnectionError."""
        if self.ingest is not None:
            self.ingest.start()
            self._started = True

    def close(self) -> None:
        if self._started and self.ingest is not None:
            self.ingest.stop()
        self._started = False
        self.store.close()
