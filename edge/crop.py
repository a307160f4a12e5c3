"""The live face crop for the store's own guide screen (store-local topic, never the cloud).

The box cannot know whether a face is a member (the cloud decides), so when a store turns crops on
the box offers one crop per arrival, keyed by the arrival's event id, on
``instore/v1/{brand}/{store}/local/crop/{device}``; the guide screen shows it only beside a member
card for that arrival. It is sent QoS 0 with a 60 s expiry and never retained or stored: a crop
that misses its moment is not sent later.
"""

from __future__ import annotations

import base64

import cv2

from edge.pipeline import ArrivalEvent
from protocol import topics
from protocol.device import FaceCrop, LocalCropSettings
from protocol.messages import now

EXPIRY_S = 60


def crop_topic(brand: str, store: str, device: str) -> str:
    return topics.local_crop(brand, store, device)


def face_crop(event: ArrivalEvent, settings: LocalCropSettings) -> FaceCrop:
    image = cv2.resize(event.crop, (settings.size_px, settings.size_px), interpolation=cv2.INTER_LINEAR)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding of the face crop failed")
    a = event.arrival
    return FaceCrop(brand=a.brand, store=a.store, device=a.device, camera=a.camera, arrival_event_id=a.event_id,
                    ts=now(), jpeg=base64.b64encode(jpeg.tobytes()).decode())
