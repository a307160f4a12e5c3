"""Face model packs: which files form a pack, their checksums, and how to run them.

Edge boxes embed faces at the door and the cloud embeds enrolment photos; both must produce the
same vector for the same face, so the pack definition and its preprocessing are part of the
contract. Importing this package loads no model; ``FaceEngine`` does, on demand.
"""

from protocol.facepack.manifests import (
    DEFAULT_PACK,
    PACKS,
    ModelPack,
    NotCommercialError,
    PackError,
    get_pack,
    models_dir,
    require_commercial,
)

__all__ = [
    "PACKS", "DEFAULT_PACK", "ModelPack", "PackError", "NotCommercialError", "get_pack", "models_dir",
    "require_commercial",
]
