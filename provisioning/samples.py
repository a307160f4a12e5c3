"""Sample members and camera frames for the demo, built from any folder of face photos.

Two layouts are understood. A folder of sub-folders is one person per sub-folder (the layout of
``../shared/data/faces``): the first photo enrols the person, the others are what the camera sees.
A flat folder (insightface's own sample images, the default) holds single portraits and group
photos: every prominent face is a person, enrolled from a crop, and the camera sees the photo
mirrored, so the edge never receives the very pixels that were enrolled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2

from protocol.facepack.engine import FaceEngine
from protocol.facepack.quality import frontal_enough

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
#: A face smaller than this share of the photo's largest face is background, not a person.
PROMINENT_AREA = 0.25


@dataclass(frozen=True)
class MemberSeed:
    name: str
    gender: str | None  # None: unknown, the card says 会员 rather than guess 先生 or 女士
    tier: str
    tags: tuple[str, ...]
    preferences: tuple[str, ...]

    def as_json(self, phone: str) -> dict:
        return {
            "name": self.name,
            "phone": phone,
            "gender": self.gender,
            "tier": self.tier,
            "tags": list(self.tags),
            "preferences": list(self.preferences),
            "consent": {"face": True},
        }


#: The demo brand's own labels for its sample members: interests and habits its staff would write
#: down, never a fact the CDP computes and that changes with time (birthday month, points expiring,
#: dormant, first visit, value tier): a hand-set 生日月 stays on the card all year, beside a script
#: that knows better.
MEMBER_SEEDS = (
    MemberSeed("王芳", "female", "金卡会员", ("护肤达人", "周末到店", "敏感肌"), ("护肤", "彩妆")),
    MemberSeed("李伟", "male", "银卡会员", ("商务男士", "剃须护理"), ("男士护理", "香水")),
    MemberSeed("张静", "female", "钻石会员", ("VIP", "偏好新品", "香氛收藏"), ("香水", "护肤")),
    MemberSeed("刘洋", "male", "普通会员", ("控油需求",), ("男士护理",)),
    MemberSeed("陈晨", "female", "金卡会员", ("彩妆控", "小红书活跃"), ("彩妆",)),
    MemberSeed("杨帆", "male", "银卡会员", ("木质香调",), ("香水",)),
    MemberSeed("赵敏", "female", "钻石会员", ("礼品采购", "企业客户"), ("护肤", "礼盒")),
    MemberSeed("黄磊", "male", "普通会员", ("线上下单", "保湿需求"), ("男士护理", "护肤")),
    MemberSeed("周婷", "female", "金卡会员", ("抗老需求",), ("护肤",)),
    MemberSeed("吴昊", "male", "银卡会员", ("价格敏感",), ("礼盒",)),
)


#: The people of insightface's sample photos (the demo's default folder), labelled by eye: the seed a
#: person is enrolled with must fit them (a woman's face is never shown as 李先生). People of another
#: folder have no known gender, and their seeds none either.
SAMPLE_GENDERS = {"t1-0": "female", "t1-1": "female", "t1-2": "male", "t1-3": "male", "t1-4": "male",
                  "t1-5": "female", "Tom_Hanks_54745": "male"}


def seeds_for(people: list[SamplePerson]) -> list[tuple[SamplePerson, MemberSeed]]:
    """Each person with the first unused seed of their gender (a seed without gender if unknown)."""
    left = list(MEMBER_SEEDS)
    paired = []
    for person in people:
        gender = SAMPLE_GENDERS.get(person.key)
        seed = next((s for s in left if gender is None or s.gender == gender), None)
        if seed is None:
            break
        left.remove(seed)
        paired.append((person, seed if gender is not None else replace(seed, gender=None)))
    return paired


@dataclass
class SamplePerson:
    key: str
    enrol_photo: Path
    frames: list[Path] = field(default_factory=list)
    frontal: bool = True  # the enrolment photo faces the camera enough to be enrolled


@dataclass
class Sample:
    enrolled: list[tuple[SamplePerson, MemberSeed]]
    visitors: list[SamplePerson]
    frames_dir: Path

    def person_of_frame(self, origin: str) -> str | None:
        """The person a frame file shows (None for group photos, which show several)."""
        name = Path(origin).name
        return name.split("__", 1)[0] if "__" in name and not name.startswith("group__") else None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _mirror(src: Path, dst: Path) -> Path:
    image = cv2.imread(str(src))
    if image is None:
        raise ValueError(f"{src} is not an image OpenCV can read")
    cv2.imwrite(str(dst), cv2.flip(image, 1))
    return dst


def _people_from_subfolders(folder: Path, frames_dir: Path, enrol: int | None) -> list[SamplePerson]:
    """Members' frames are their photos but the enrolment one; visitors' are all their photos."""
    albums = [(sub.name, _images(sub)) for sub in sorted(p for p in folder.iterdir() if p.is_dir())]
    albums = [(key, photos) for key, photos in albums if photos]
    count = _enrol_count(len(albums), enrol)
    people = []
    for number, (key, photos) in enumerate(albums):
        person = SamplePerson(key, photos[0])
        shown = photos if number >= count else photos[1:]
        for photo in shown:
            dst = frames_dir / f"{key}__{photo.name}"
            dst.symlink_to(photo.resolve())
            person.frames.append(dst)
        if not shown:  # a member with a single photo is shown it mirrored
            person.frames.append(_mirror(photos[0], frames_dir / f"{key}__{photos[0].name}"))
        people.append(person)
    return people


def _enrol_count(people: int, enrol: int | None) -> int:
    """About 60% become members by default, leaving at least one visitor."""
    count = enrol if enrol is not None else max(1, min(people - 1, round(0.6 * people)))
    return max(0, min(count, people, len(MEMBER_SEEDS)))


def _people_from_flat(folder: Path, frames_dir: Path, crops_dir: Path, engine: FaceEngine) -> list[SamplePerson]:
    people = []
    for photo in _images(folder):
        image = cv2.imread(str(photo))
        if image is None:
            log.warning("sample: %s is not an image, skipped", photo)
            continue
        faces = engine.detect(image)
        if not faces:
            log.info("sample: no face in %s, skipped", photo.name)
            continue
        prominent = [f for f in faces if f.area >= PROMINENT_AREA * faces[0].area]
        if len(prominent) == 1:
            frame = _mirror(photo, frames_dir / f"{photo.stem}__{photo.name}")
            people.append(SamplePerson(photo.stem, photo, [frame], frontal_enough(prominent[0].kps)))
            continue
        frame = _mirror(photo, frames_dir / f"group__{photo.name}")
        h, w = image.shape[:2]
        for number, face in enumerate(sorted(prominent, key=lambda f: f.bbox[0])):
            x1, y1, x2, y2 = face.bbox
            mx, my = 0.3 * (x2 - x1), 0.3 * (y2 - y1)
            crop = image[max(0, int(y1 - my)) : min(h, int(y2 + my)), max(0, int(x1 - mx)) : min(w, int(x2 + mx))]
            crop_path = crops_dir / f"{photo.stem}-{number}.png"
            cv2.imwrite(str(crop_path), crop)
            # the pose as the cloud will measure it: on the crop, detected again (landmarks move a few degrees)
            again = engine.detect(crop)
            frontal = bool(again) and frontal_enough(again[0].kps)
            people.append(SamplePerson(f"{photo.stem}-{number}", crop_path, [frame], frontal))
    return people


def build_sample(folder: Path, workdir: Path, enrol: int | None) -> Sample:
    """Lay out enrolment photos and camera frames under ``workdir``.

    ``enrol`` is how many people become members (default: about 60%, leaving at least one
    visitor); the rest are visitors the edge must never show as members.
    """
    frames_dir = workdir / "frames"
    crops_dir = workdir / "enrol"
    frames_dir.mkdir(parents=True, exist_ok=True)
    crops_dir.mkdir(parents=True, exist_ok=True)
    if any(p.is_dir() for p in folder.iterdir()):
        people = _people_from_subfolders(folder, frames_dir, enrol)
    else:
        people = _people_from_flat(folder, frames_dir, crops_dir, FaceEngine.load())
    if not people:
        raise ValueError(f"no usable face photos in {folder}")
    count = _enrol_count(len(people), enrol)
    # members are enrolled from photos that face the camera (the cloud refuses turned heads); a person
    # whose only photo is turned away is still a fine visitor
    people.sort(key=lambda person: not person.frontal)
    count = min(count, sum(person.frontal for person in people))
    enrolled = seeds_for(people[:count])
    return Sample(enrolled=enrolled, visitors=people[len(enrolled):], frames_dir=frames_dir)
