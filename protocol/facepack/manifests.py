"""Pack manifests kept in code; the model files stay outside the repository (``INSTORE_MODELS``).

``match_threshold`` and ``match_margin`` are calibrated per pack with ``bench/openset.py`` on
``../shared/data/faces_lfw_dev`` (open-set: enrolled members, their other photos as probes, and
strangers who were never enrolled), on one half of the people, and reported on the other half; the
figures sit in each pack's ``calibration``. The rule chosen: strangers shown as a member (FPIR)
<= 0.1% and members shown as another member <= 0.02%, then as few missed members as possible,
because showing the wrong member to an assistant is the worst error the product can make; a missed
member is only a visitor. ``templates`` holds the same for members enrolled with several photos:
the search mode (mean template or best photo) the bench chose on the calibration half, with its
own threshold and margin (the bench's ``manifest`` block per pack). See docs/RECOGNITION.md.

Every pack states the licence of its code, its weights and the data the weights were trained on,
and whether a paying brand may use it (``commercial_use``); ``require_commercial`` refuses the
others where a brand's setting asks for it.
"""

from __future__ import annotations

import hashlib
import importlib.util
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
    package: str | None = Field(
        default=None,
        description="'module/folder' of an installed Python package that ships this file; used when the "
        "model folder lacks it (the checksum is checked all the same)",
    )


class DetectorSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["scrfd", "yunet"]
    file: ModelFile
    score_threshold: float = Field(ge=0, le=1)
    input_size: int = Field(description="longest side the detector sees, in pixels")


class RecogniserSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["arcface", "dlib"] = Field(
        description="arcface: the detector's 5 points aligned to the ArcFace template, 112x112 ONNX input; "
        "dlib: dlib's 5-point shape predictor inside the detector's box, dlib's 150x150 face chip"
    )
    file: ModelFile
    landmarks: ModelFile | None = Field(default=None, description="dlib only: the 5-point shape predictor")
    embedding_space: str = Field(description="vectors from packs with the same space are comparable")
    embedding_dim: int
    color: Literal["RGB", "BGR"]
    scale: float = Field(description="pixel value multiplier before mean/std")
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class Licences(BaseModel):
    """What a brand's lawyer asks before a pack goes into a paying store."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="the libraries that run the pack")
    weights: str = Field(description="the model files themselves")
    training_data: str = Field(description="the data the weights were trained on")


class Calibration(BaseModel):
    """Where ``match_threshold`` and ``match_margin`` come from, with the figures measured there."""

    model_config = ConfigDict(frozen=True)

    date: str
    method: str = Field(description="the command and the rule that chose the threshold and margin")
    figures: dict[str, float] = Field(description="rates in percent on the report half, unless named otherwise")


class TemplateSearch(BaseModel):
    """How a member enrolled with several photos is searched, and that mode's own calibration.

    ``mean``: one template per member, the normalised mean of their photos' embeddings; ``max``: every
    photo a template, the member scoring with their best one. ``bench/openset.py`` compares both with two
    photos per member, picks the mode with fewer misses on the calibration half, calibrates its threshold
    and margin there (the same rule as the one-photo threshold) and reports on the other half. A member
    with one photo is still judged by the pack's one-photo ``match_threshold`` and ``match_margin``."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["mean", "max"]
    threshold: float = Field(description="cosine similarity at or above which a member with 2+ photos is shown")
    margin: float = Field(description="that member must beat the runner-up by this much")
    floor: float | None = Field(default=None, description="the uncertain band's lower bound for that mode: the "
                                "threshold at which 1% of strangers pass; None: no band (the card never asks)")
    figures: dict[str, float] = Field(description="rates in percent on the report half, two photos per member")


class ModelPack(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    description: str
    detector: DetectorSpec
    recogniser: RecogniserSpec
    match_threshold: float = Field(description="cosine similarity at or above which a face is a member")
    match_margin: float = Field(description="best member must beat the runner-up by this much")
    min_face_px: int = Field(description="smaller faces are not embedded")
    track_min_similarity: float = Field(
        description="the edge tracker's default min_similarity: the cosine that keeps 99% of same-person pairs "
        "(different photos, dev set calibration half) together; bench/track_similarity.py")
    licences: Licences
    commercial_use: bool = Field(
        description="cleared for a paying brand: code and weights licences allow commercial use "
        "(training-data terms are stated in ``licences`` for the brand to judge)"
    )
    calibration: Calibration | None = None
    templates: TemplateSearch | None = Field(
        default=None, description="several photos per member: the search mode and its threshold; None: max, "
        "judged by the one-photo threshold")

    @property
    def template_mode(self) -> Literal["mean", "max"]:
        return self.templates.mode if self.templates is not None else "max"

    def bounds(self, templates: int) -> tuple[float, float]:
        """(threshold, margin) for a best member enrolled with ``templates`` photos: each enrolment
        mode has its own score distribution, so its own calibration."""
        if templates >= 2 and self.templates is not None:
            return self.templates.threshold, self.templates.margin
        return self.match_threshold, self.match_margin

    @property
    def files(self) -> tuple[ModelFile, ...]:
        extra = (self.recogniser.landmarks,) if self.recogniser.landmarks is not None else ()
        return (self.detector.file, *extra, self.recogniser.file)


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

_YUNET = DetectorSpec(
    kind="yunet",
    file=ModelFile(
        name="face_detection_yunet_2023mar.onnx",
        sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        licence="MIT",
        url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
    ),
    score_threshold=0.7,
    input_size=640,
)

_MBF_LICENCES = dict(
    code="onnxruntime MIT, OpenCV Apache-2.0, insightface MIT (code only)",
    training_data="MS-Celeb-1M (recogniser): withdrawn by Microsoft, non-commercial research only",
)

_OPENSET_METHOD = (
    "bench/openset.py on faces_lfw_dev: one enrolled photo; calibrated on the people of one half "
    "(FPIR <= 0.1%, wrong-member <= 0.02%, then fewest misses), figures in percent on the other half; "
    "non-mated searches are strangers and members searched with themselves withheld; *_cpu_ms per face, 2 threads"
)

# dlib's files ship inside the `face-recognition-models` package (the `commercial-pack` extra).
_DLIB_MODELS = "face_recognition_models/models"

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
            match_threshold=0.4913,
            match_margin=0.0535,
            calibration=Calibration(
                date="2026-12-05",
                method=_OPENSET_METHOD,
                figures={
                    "fnir": 10.317,
                    "fpir": 0.0,
                    "wrong_member": 0.0,
                    "fpir_upper95": 0.143,
                    "wrong_member_upper95": 0.306,
                    "fnir_at_fpir_0.1": 10.01,
                    "fnir_at_fpir_0.3": 9.091,
                    "fnir_two_photos_mean": 4.558,
                    "fnir_two_photos_max": 5.413,
                    "mated_searches": 979,
                    "nonmated_searches": 2093,
                    "detect_cpu_ms": 79.8,
                    "align_embed_cpu_ms": 17.4,
                },
            ),
            templates=TemplateSearch(
                mode="mean",
                threshold=0.5226,
                margin=0.0579,
                floor=0.4653,
                figures={
                    "fnir": 4.558,
                    "fpir": 0.048,
                    "wrong_member": 0.0,
                    "fpir_upper95": 0.226,
                    "wrong_member_upper95": 0.85,
                    "fnir_one_photo_same_probes": 12.821,
                    "mated_searches": 351,
                    "nonmated_searches": 2093,
                },
            ),
            min_face_px=24,
            track_min_similarity=0.32,  # bench/track_similarity.py, 120 people, 2026-12-05
            licences=Licences(
                weights="SCRFD: InsightFace non-commercial research only; MobileFaceNet: Apache-2.0 export "
                "of weights trained on MS-Celeb-1M",
                **_MBF_LICENCES,
            ),
            commercial_use=False,
        ),
        ModelPack(
            id="yunet-mbf",
            description="OpenCV YuNet detector + MobileFaceNet; commercially usable detector",
            detector=_YUNET,
            recogniser=_MOBILEFACENET,
            match_threshold=0.4946,
            match_margin=0.0585,
            calibration=Calibration(
                date="2026-12-05",
                method=_OPENSET_METHOD,
                figures={
                    "fnir": 16.547,
                    "fpir": 0.095,
                    "wrong_member": 0.0,
                    "fpir_upper95": 0.3,
                    "wrong_member_upper95": 0.306,
                    "fnir_at_fpir_0.1": 14.096,
                    "fnir_at_fpir_0.3": 11.747,
                    "fnir_two_photos_mean": 7.184,
                    "fnir_two_photos_max": 6.609,
                    "mated_searches": 979,
                    "nonmated_searches": 2099,
                    "detect_cpu_ms": 5.0,
                    "align_embed_cpu_ms": 8.2,
                },
            ),
            templates=TemplateSearch(
                mode="mean",
                threshold=0.5174,
                margin=0.0521,
                floor=0.4579,
                figures={
                    "fnir": 7.184,
                    "fpir": 0.095,
                    "wrong_member": 0.0,
                    "fpir_upper95": 0.3,
                    "wrong_member_upper95": 0.857,
                    "fnir_one_photo_same_probes": 19.828,
                    "mated_searches": 348,
                    "nonmated_searches": 2099,
                },
            ),
            min_face_px=24,
            track_min_similarity=0.32,  # bench/track_similarity.py, 120 people, 2026-12-05
            licences=Licences(
                weights="YuNet: MIT; MobileFaceNet: Apache-2.0 export of weights trained on MS-Celeb-1M",
                **_MBF_LICENCES,
            ),
            commercial_use=False,
        ),
        ModelPack(
            id="yunet-dlib",
            description="OpenCV YuNet detector + dlib ResNet recogniser (5-point chip); commercially usable, "
            "but misses ~40% of members at a 600-person gallery with one photo (~18% with two) and costs "
            "~80 ms CPU per face",
            detector=_YUNET,
            recogniser=RecogniserSpec(
                kind="dlib",
                file=ModelFile(
                    name="dlib_face_recognition_resnet_model_v1.dat",
                    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                    licence="public domain (Davis King, dlib-models; CC0 file in face-recognition-models 0.3.0)",
                    url="https://github.com/ageitgey/face_recognition_models/raw/master/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
                    package=_DLIB_MODELS,
                ),
                landmarks=ModelFile(
                    name="shape_predictor_5_face_landmarks.dat",
                    sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
                    licence="public domain (Davis King, dlib-models; CC0 file in face-recognition-models 0.3.0)",
                    url="https://github.com/ageitgey/face_recognition_models/raw/master/face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
                    package=_DLIB_MODELS,
                ),
                embedding_space="dlib-resnet-v1",
                embedding_dim=128,
                color="RGB",
                scale=1.0,  # dlib normalises the chip itself
                mean=(0.0, 0.0, 0.0),
                std=(1.0, 1.0, 1.0),
            ),
            match_threshold=0.9455,
            match_margin=0.0249,
            calibration=Calibration(
                date="2026-12-05",
                method=_OPENSET_METHOD,
                figures={
                    "fnir": 40.245,
                    "fpir": 0.333,
                    "wrong_member": 0.0,
                    "fpir_upper95": 0.625,
                    "wrong_member_upper95": 0.306,
                    "fnir_at_fpir_0.1": 49.336,
                    "fnir_at_fpir_0.3": 42.492,
                    "fnir_two_photos_mean": 18.103,
                    "fnir_two_photos_max": 21.264,
                    "mated_searches": 979,
                    "nonmated_searches": 2099,
                    "detect_cpu_ms": 4.1,
                    "align_embed_cpu_ms": 77.6,
                },
            ),
            templates=TemplateSearch(
                mode="mean",
                threshold=0.9532,
                margin=0.013,
                floor=0.9483,
                figures={
                    "fnir": 18.103,
                    "fpir": 0.238,
                    "wrong_member": 0.0,
                    "fpir_upper95": 0.5,
                    "wrong_member_upper95": 0.857,
                    "fnir_one_photo_same_probes": 48.276,
                    "mated_searches": 348,
                    "nonmated_searches": 2099,
                },
            ),
            min_face_px=24,
            track_min_similarity=0.90,  # bench/track_similarity.py, 120 people, 2026-12-05
            licences=Licences(
                code="dlib-bin (dlib 20): Boost Software Licence 1.0; OpenCV Apache-2.0",
                weights="YuNet: MIT; dlib ResNet recogniser and 5-point shape predictor: public domain "
                "(never the 68-point model, whose data forbids commercial use)",
                training_data="recogniser: ~3M faces from FaceScrub, VGG Face and images scraped by dlib's "
                "author (those datasets carry research terms); 5-point landmarks: dlib's own CC0 annotations "
                "of public images; YuNet: WIDER FACE (research terms)",
            ),
            commercial_use=True,
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


def packaged_path(spec: ModelFile) -> Path | None:
    """Where an installed Python package ships this file, or None (no package, or not installed).

    The package is located without being imported (``face_recognition_models`` imports
    ``pkg_resources``, which recent setuptools no longer has)."""
    if spec.package is None:
        return None
    module, _, sub = spec.package.partition("/")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / sub / spec.name
    return path if path.is_file() else None


def locate(spec: ModelFile, folder: Path) -> Path:
    """The file in the model folder, else the copy an installed package ships (unchecked here)."""
    path = folder / spec.name
    if not path.is_file():
        path = packaged_path(spec) or path
    return path


def verify(pack: ModelPack, folder: Path) -> dict[str, Path]:
    """Check every file of the pack; return name -> path. Raises PackError naming the bad file.

    A file missing from the folder may come from the Python package the manifest names for it."""
    paths: dict[str, Path] = {}
    for spec in pack.files:
        path = locate(spec, folder)
        if not path.is_file():
            extra = f" (nor in the installed package {spec.package.split('/')[0]})" if spec.package else ""
            raise PackError(f"model pack {pack.id}: file {path} is missing{extra}")
        actual = sha256_of(path)
        if actual != spec.sha256:
            raise PackError(
                f"model pack {pack.id}: file {path} has sha256 {actual}, expected {spec.sha256}"
            )
        paths[spec.name] = path
    return paths


class NotCommercialError(PackError):
    """A pack whose licences do not allow a paying brand to use it, where the brand requires that."""


def require_commercial(pack: ModelPack | str | None) -> ModelPack:
    """The pack, if a paying brand may use it; else NotCommercialError naming what forbids it.

    The edge's ``commercial_only`` option and the cloud's brand setting call this before loading."""
    chosen = pack if isinstance(pack, ModelPack) else get_pack(pack)
    if not chosen.commercial_use:
        usable = ", ".join(p.id for p in PACKS.values() if p.commercial_use) or "none"
        raise NotCommercialError(
            f"model pack {chosen.id} is not cleared for commercial use (weights: {chosen.licences.weights}; "
            f"training data: {chosen.licences.training_data}); packs a paying brand may use: {usable}"
        )
    return chosen
