"""Which shelf label shows which product, and the label commands that follow from it.

Pure model and functions: the cloud store persists ``Label`` rows and the API exposes them later.
The two commands the rest of the cloud needs are built here so the topic, the TTL and the
"which labels" rule live in one place: redraw a product's labels (price or markdown change), and
flash the labels of the products recommended to a member who has just walked in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from cloud.errors import Conflict
from protocol import topics
from protocol.esl import (
    ARRIVAL_FLASH,
    TAG_TYPES,
    FlashPattern,
    LabelCommand,
    LabelProduct,
    TagType,
    TagTypeId,
)
from protocol.messages import Id, new_id

#: An arrival flash is only useful while the member is still near the shelf.
ARRIVAL_FLASH_TTL_S = 120
#: A price redraw may wait out an access-point reboot, but not a day.
PRICE_TTL_S = 6 * 3600


class Label(BaseModel):
    """One physical label in one store, bound to the product it sits under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_id: Id
    store: Id
    sku: Id
    tag_type: TagTypeId

    @property
    def tag(self) -> TagType:
        return TAG_TYPES[self.tag_type]


class LabelBindingError(Conflict):
    """A label bound to two products at once, or a label the store does not have."""

    code = "label_binding"


class LabelRegistry:
    """Labels by (store, label id); a product may have several labels (front and end of an aisle)."""

    def __init__(self, labels: Iterable[Label] = ()) -> None:
        self._labels: dict[tuple[str, str], Label] = {}
        for label in labels:
            self.add(label)

    def add(self, label: Label) -> None:
        """Bind a new label; re-binding an existing label to another product needs ``rebind``."""
        key = (label.store, label.label_id)
        if key in self._labels and self._labels[key] != label:
            raise LabelBindingError(f"label {label.label_id} in store {label.store} is already bound to "
                                f"{self._labels[key].sku}; rebind it instead")
        self._labels[key] = label

    def rebind(self, store: str, label_id: str, sku: str) -> Label:
        current = self.get(store, label_id)
        moved = current.model_copy(update={"sku": sku})
        self._labels[(store, label_id)] = moved
        return moved

    def remove(self, store: str, label_id: str) -> Label:
        try:
            return self._labels.pop((store, label_id))
        except KeyError:
            raise LabelBindingError(f"no label {label_id} in store {store}") from None

    def get(self, store: str, label_id: str) -> Label:
        try:
            return self._labels[(store, label_id)]
        except KeyError:
            raise LabelBindingError(f"no label {label_id} in store {store}") from None

    def of_store(self, store: str) -> list[Label]:
        return sorted((label for label in self._labels.values() if label.store == store), key=lambda label: label.label_id)

    def for_products(self, store: str, skus: Iterable[str]) -> list[Label]:
        """The store's labels for these products, in the order the products were given."""
        wanted = list(dict.fromkeys(skus))
        labels = self.of_store(store)
        return [label for sku in wanted for label in labels if label.sku == sku]


def redraw_commands(
    registry: LabelRegistry, brand: str, store: str, product: LabelProduct, at: datetime, *, reason: str = "price"
) -> list[tuple[str, LabelCommand]]:
    """(topic, command) for every label of ``product`` in ``store``: show its new price or markdown."""
    return [
        (topics.label_command(brand, store, label.label_id), LabelCommand(
            command_id=new_id(), ts=at, brand=brand, store=store, label=label.label_id,
            product=product, reason=reason, ttl_s=PRICE_TTL_S,
        ))
        for label in registry.for_products(store, [product.sku])
    ]


def arrival_flash_commands(
    registry: LabelRegistry,
    brand: str,
    store: str,
    skus: Iterable[str],
    at: datetime,
    *,
    reason: str,
    pattern: FlashPattern = ARRIVAL_FLASH,
    top: int = 3,
) -> list[tuple[str, LabelCommand]]:
    """Flash the labels of the first ``top`` recommended products the store has labels for."""
    with_labels = [sku for sku in dict.fromkeys(skus) if registry.for_products(store, [sku])][:top]
    return [
        (topics.label_command(brand, store, label.label_id), LabelCommand(
            command_id=new_id(), ts=at, brand=brand, store=store, label=label.label_id,
            flash=pattern, reason=reason, ttl_s=ARRIVAL_FLASH_TTL_S,
        ))
        for label in registry.for_products(store, with_labels)
    ]
