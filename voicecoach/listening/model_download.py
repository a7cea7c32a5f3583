"""Download, verify and install a Vosk model archive atomically: all of it or nothing."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TextIO

from voicecoach.listening.vosk import DEFAULT_MODEL_NAME, default_model_dir, is_model_dir

_LOGGER = logging.getLogger(__name__)

DEFAULT_MODEL_URL = f"https://alphacephei.com/vosk/models/{DEFAULT_MODEL_NAME}.zip"
URL_ENV = "VOICECOACH_MODEL_URL"
"""Environment variable that overrides the default URL (mirrors, tests)."""
_CHUNK_BYTES = 64 * 1024
_PROGRESS_EVERY_S = 0.1
_TIMEOUT_S = 30.0
_REQUIRED_FILES = ("am/final.mdl", "conf/model.conf")
_REQUIRED_DIRS = ("graph/",)
_MAX_UNPACKED_BYTES = 8 * 1024**3
"""Refuse archives that claim to unpack to more than this (a zip bomb, or not a model)."""


class ModelDownloadError(RuntimeError):
    """The model could not be downloaded or installed (one clear line for the user)."""


@dataclass(frozen=True)
class DownloadProgress:
    """How far a download has got."""

    done_bytes: int
    total_bytes: int | None
    """From Content-Length; None when the server does not say."""
    elapsed_s: float
    finished: bool = False
    """True on the last report, once every byte has arrived."""

    @property
    def bytes_per_s(self) -> float:
        """Average rate so far."""
        return self.done_bytes / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        """0 to 1, when the total is known."""
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else None


ProgressCallback = Callable[[DownloadProgress], None]


def download_model(
    url: str | None = None,
    dest_dir: Path | None = None,
    name: str = DEFAULT_MODEL_NAME,
    expected_sha256: str | None = None,
    progress: ProgressCallback | None = None,
    *,
    force: bool = False,
    timeout_s: float = _TIMEOUT_S,
) -> Path:
    """Install the model archive at url as dest_dir/name and return that folder; no-op if already there."""
    url = url or os.environ.get(URL_ENV, "").strip() or DEFAULT_MODEL_URL
    expected_sha256 = _checked_sha256(expected_sha256)
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ModelDownloadError(f"a model name must be a plain folder name, got {name!r}")
    dest_dir = Path(dest_dir) if dest_dir is not None else default_model_dir()
    target = dest_dir / name
    if is_model_dir(target) and not force:
        _LOGGER.info("model %s is already installed at %s", name, target)
        return target
    if target.exists() and not force:
        raise ModelDownloadError(f"{target} exists but is not a Vosk model: remove it or download with --force")
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelDownloadError(f"cannot create {dest_dir}: {exc}") from None
    with _scratch(dest_dir, name) as (archive, unpack_dir):
        digest = _fetch(url, archive, progress, timeout_s)
        _check_sha256(digest, expected_sha256)
        top = _unpack(archive, unpack_dir)
        _install(unpack_dir / top, target)
    _LOGGER.info("installed model %s at %s", name, target)
    return target


@contextlib.contextmanager
def _scratch(dest_dir: Path, name: str) -> Iterator[tuple[Path, Path]]:
    """A temporary archive file and unpack folder inside dest_dir, removed whatever happens."""
    made: list[Path] = []
    try:
        fd, archive = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.part", dir=dest_dir)
        os.close(fd)
        made.append(Path(archive))
        made.append(Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".unpack", dir=dest_dir)))
        yield made[0], made[1]
    except ModelDownloadError:
        raise
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelDownloadError(f"installing {name} failed: {exc}") from None
    finally:  # also on KeyboardInterrupt: nothing half-installed may remain
        for path in made:
            _remove(path)


def _remove(path: Path) -> None:
    """Delete a file or a folder tree, if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fetch(url: str, archive: Path, progress: ProgressCallback | None, timeout_s: float) -> str:
    """Stream url into archive, reporting progress; return the sha256 of what arrived."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, archive.open("wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done, digest = _copy(response, out, total, progress)
    except urllib.error.HTTPError as exc:
        raise ModelDownloadError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise ModelDownloadError(f"download failed: {url}: {exc.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise ModelDownloadError(f"download failed: {url}: {_describe(exc)}") from None
    if total is not None and done != total:
        raise ModelDownloadError(f"download truncated: got {done} of {total} bytes from {url}")
    return digest


def _copy(response: BinaryIO, out: BinaryIO, total: int | None, progress: ProgressCallback | None) -> tuple[int, str]:
    """Copy the body in chunks, hashing and reporting at most every 0.1 s; return (bytes, sha256)."""
    sha, done, start = hashlib.sha256(), 0, time.monotonic()
    last_report = start
    while chunk := response.read(_CHUNK_BYTES):
        out.write(chunk)
        sha.update(chunk)
        done += len(chunk)
        now = time.monotonic()
        if progress is not None and now - last_report >= _PROGRESS_EVERY_S:
            progress(DownloadProgress(done, total, now - start))
            last_report = now
    if progress is not None:
        progress(DownloadProgress(done, total, time.monotonic() - start, finished=True))
    return done, sha.hexdigest()


def _describe(exc: BaseException) -> str:
    """A short reason for a network or protocol error."""
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed early ({len(exc.partial)} bytes of the last read, {exc.expected} missing)"
    return str(exc) or type(exc).__name__


def _checked_sha256(expected: str | None) -> str | None:
    """The expected sha256 in lowercase hex, refused before any download if it is not one."""
    if expected is None:
        return None
    digest = expected.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ModelDownloadError(f"not a sha256 (64 hex digits): {expected!r}")
    return digest


def _check_sha256(actual: str, expected: str | None) -> None:
    """Compare the archive's sha256 with the expected one, when there is one."""
    if expected is not None and actual != expected:
        raise ModelDownloadError(f"sha256 mismatch: expected {expected}, got {actual}")


def _unpack(archive: Path, unpack_dir: Path) -> str:
    """Test the archive, check its layout and member names, unpack it; return its top folder's name."""
    try:
        with zipfile.ZipFile(archive) as zf:
            top = _check_members(zf.infolist())
            bad = zf.testzip()
            if bad is not None:
                raise ModelDownloadError(f"archive is damaged: bad CRC in {bad}")
            zf.extractall(unpack_dir)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ModelDownloadError(f"archive is damaged or not a zip file: {exc}") from None
    return top


def _check_members(members: list[zipfile.ZipInfo]) -> str:
    """Refuse unsafe member names and anything but one top folder with a Vosk model in it."""
    for info in members:
        _check_member_name(info)
    if sum(info.file_size for info in members) > _MAX_UNPACKED_BYTES:
        raise ModelDownloadError(f"archive would unpack to more than {_MAX_UNPACKED_BYTES} bytes: refused")
    tops = {PurePosixPath(info.filename).parts[0] for info in members}
    if len(tops) != 1:
        raise ModelDownloadError(f"expected one top folder in the archive, found {len(tops)}: {sorted(tops)[:5]}")
    top = tops.pop()
    names = {info.filename for info in members}
    missing = [f for f in _REQUIRED_FILES if f"{top}/{f}" not in names]
    missing += [d for d in _REQUIRED_DIRS if not any(n.startswith(f"{top}/{d}") for n in names)]
    if missing:
        raise ModelDownloadError(f"not a Vosk model archive: {top}/ lacks {', '.join(missing)}")
    return top


def _check_member_name(info: zipfile.ZipInfo) -> None:
    """Refuse absolute paths, '..', drive letters, backslashes and symbolic links."""
    name = info.filename
    parts = PurePosixPath(name).parts
    unsafe = (
        not name
        or name.startswith("/")
        or "\\" in name
        or ":" in (parts[0] if parts else "")
        or ".." in parts
        or stat.S_ISLNK(info.external_attr >> 16)
    )
    if unsafe:
        raise ModelDownloadError(f"unsafe member in archive: {name!r}: refused")


def _install(unpacked: Path, target: Path) -> None:
    """Move the unpacked model into place in one rename; an old copy (force) goes once the new one is in."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(unpacked, target)
    except BaseException:
        if old is not None:
            os.replace(old / target.name, target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def format_progress(progress: DownloadProgress, width: int = 30) -> str:
    """One line such as '[#######.......]  45%  18.0 of 39.9 MB  2.3 MB/s'."""
    done_mb, rate_mb = progress.done_bytes / 1e6, progress.bytes_per_s / 1e6
    fraction = progress.fraction
    if fraction is None or progress.total_bytes is None:
        return f"{done_mb:.1f} MB  {rate_mb:.1f} MB/s"
    filled = int(round(fraction * width))
    bar = "#" * filled + "." * (width - filled)
    return f"[{bar}] {fraction:4.0%}  {done_mb:.1f} of {progress.total_bytes / 1e6:.1f} MB  {rate_mb:.1f} MB/s"


def print_progress(stream: TextIO | None = None) -> ProgressCallback:
    """A progress callback that redraws one line on stderr (or stream), ended when the download is."""
    out = stream if stream is not None else sys.stderr

    def report(progress: DownloadProgress) -> None:
        out.write("\r" + format_progress(progress) + ("\n" if progress.finished else ""))
        out.flush()

    return report
