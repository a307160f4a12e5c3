"""Pack manifests kept in code; the model files stay outside the repository (``INSTORE_MODELS``).

``match_threshold`` is calibrated per pack with ``bench/calibrate.py`` on the labelled photos in
``../shared/data/faces`` (one enrolment photo per person, every other photo as a probe): the
threshold sits above every impostor score seen, because showing the wrong member to an assistant
is the worst error the product can make; a missed member is only a visitor.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MODELS_ENV = "INSTORE_MODELS"


class PackError(RuntimeError):
    """A model pack that cannot be used: unknown, missing a file, or failing its checksum."""


class ModelFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    licence: str
    url: str | None = Field(default=None, description="where an installer with internet fetches it")


class DetectorSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["scrfd", "yunet"]
    file: ModelFile
    score_threshold: float = Field(ge=0, le=1)
    input_size: int = Field(description="longest side the detector sees, in pixels")


class RecogniserSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["arcface"] = Field(description="5-point ArcFace-template alignment, 112x112 input")
    file: ModelFile
    embedding_space: str = Field(description="vectors from packs with the same space are comparable")
    embedding_dim: int
    color: Literal["RGB", "BGR"]
    scale: float = Field(description="pixel value multiplier before mean/std")
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class ModelPack(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    description: str
    detector: DetectorSpec
    recogniser: RecogniserSpec
    match_threshold: float = Field(description="cosine similarity at or above which a face is a member")
    match_margin: float = Field(description="best member must beat the runner-up by this much")
    min_face_px: int = Field(description="smaller faces are not embedded")

    @property
    def files(self) -> tuple[ModelFile, ...]:
        return (self.detector.file, self.recogniser.file)

    @property
    def commercial_use(self) -> bool:
        return all("non-commercial" not in f.licence for f in self.files)


_MOBILEFACENET = RecogniserSpec(
    kind="arcface",
    file=ModelFile(
        name="mobilefacenet_foamliu_v1.onnx",
        sha256="0c9ad2a83969fc82155706f7020e6926b4a1a90a5476fff4a5588dfe207f64a4",
        licence="Apache-2.0 code; weights trained on MS-Celeb-1M, whose terms allow non-commercial research only",
    ),
    embedding_space="mobilefacenet-foamliu-v1",
    embedding_dim=128,
    color="RGB",
    scale=1 / 255,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)

PACKS: dict[str, ModelPack] = {
    pack.id: pack
    for pack in (
        ModelPack(
            id="scrfd500m-mbf",
            description="InsightFace SCRFD-500MF detector + MobileFaceNet; accurate, research licence",
            detector=DetectorSpec(
                kind="scrfd",
                file=ModelFile(
                    name="det_500m.onnx",
                    sha256="5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a",
                    licence="InsightFace non-commercial research only",
                ),
                score_threshold=0.5,
                input_size=640,
            ),
            recogniser=_MOBILEFACENET,
            # bench/calibrate.py 2026-11-22: impostor max 0.441, one-photo-enrolment genuine min 0.501.
            match_threshold=0.47,
            match_margin=0.05,
            min_face_px=24,
        ),
        ModelPack(
            id="yunet-mbf",
            description="OpenCV YuNet detector + MobileFaceNet; commercially usable detector",
            detector=DetectorSpec(
                kind="yunet",
                file=ModelFile(
                    name="face_detection_yunet_2023mar.onnx",
                    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
                    licence="MIT",
                    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
                ),
                score_threshold=0.7,
                input_size=640,
            ),
            recogniser=_MOBILEFACENET,
            # bench/calibrate.py 2026-11-22: impostor max 0.435, one-photo-enrolment genuine min
            # 0.450 (2 of 48 probes fall below the threshold and are treated as visitors).
            match_threshold=0.46,
            match_margin=0.05,
            min_face_px=24,
        ),
    )
}
DEFAULT_PACK = "scrfd500m-mbf"


def get_pack(pack_id: str | None = None) -> ModelPack:
    pack_id = pack_id or os.environ.get("INSTORE_MODEL_PACK") or DEFAULT_PACK
    try:
        return PACKS[pack_id]
    except KeyError:
        raise PackError(f"unknown model pack {pack_id!r}; known packs: {', '.join(PACKS)}") from None


def models_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the model files: the argument, else ``$INSTORE_MODELS``; made absolute
    here, so a relative setting keeps meaning the same folder after a chdir or in a symlink."""
    raw = path or os.environ.get(MODELS_ENV)
    if not raw:
        raise PackError(
            f"no model folder: set {MODELS_ENV} to the folder holding the pack's .onnx files"
        )
    folder = Path(raw).expanduser().resolve()
    if not folder.is_dir():
        raise PackError(f"model folder {folder} ({MODELS_ENV}) does not exist")
    return folder


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(pack: ModelPack, folder: Path) -> dict[str, Path]:
    """Check every file of the pack; return name -> path. Raises PackError naming the bad file."""
    paths: dict[str, Path] = {}
    for spec in pack.files:
        path = folder / spec.name
        if not path.is_file():
            raise PackError(f"model pack {pack.id}: file {path} is missing")
        actual = sha256_of(path)
        if actual != spec.sha256:
            raise PackError(
                f"model pack {pack.id}: file {path} has sha256 {actual}, expected {spec.sha256}"
            )
        paths[spec.name] = path
    return paths
