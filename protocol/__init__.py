"""The contract between the wings: topic tree, message models, codec and MQTT transport.

`edge`, `cloud` and `kiosk` never import each other; everything they exchange is defined here.
The face model packs live here too (`protocol.facepack`), because an embedding only means
something together with the pack that made it: edge and cloud must compute identical vectors.
"""

from typing import Final

SCHEMA_VERSION: Final = 1
