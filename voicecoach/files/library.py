"""The routine library: the built-in routines and the user's own, found by name or path."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from voicecoach.files.problems import FILE_FIELD, Problem
from voicecoach.files.routine_file import RoutineFileError, quoted, suggestion

_BUILTIN_PACKAGE = "voicecoach.routines"
_BUILTIN_SUFFIX = ".yaml"
_USER_SUFFIXES = (".yaml", ".yml")
_ROUTINES_ENV = "VOICECOACH_ROUTINES"
_XDG_DATA_ENV = "XDG_DATA_HOME"

_COMMAND_LINE = "<command line>"
_ROUTINE_ARGUMENT_FIELD = "routine"

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoutineRef:
    """A routine that can be named on the command line."""

    name: str
    """The file name without its suffix."""
    path: Path
    builtin: bool
    """True for the routines that ship inside the package."""
    shadows_builtin: bool = False
    """True for a user routine that replaces the built-in routine of the same name."""



def user_routines_dir() -> Path:
    """Where the user's own routines live: $VOICECOACH_ROUTINES, else the XDG data directory."""
    override = os.environ.get(_ROUTINES_ENV)
    if override:
        return Path(override).expanduser()
    data_home = os.environ.get(_XDG_DATA_ENV, "")
    base = Path(data_home) if Path(data_home).is_absolute() else Path.home() / ".local" / "share"
    return base / "voicecoach" / "routines"


def list_routines() -> list[RoutineRef]:
    """Built-in and user routines by name; a user routine replaces a built-in of the same name."""
    builtin_names = set()
    refs: dict[str, RoutineRef] = {}
    for ref in _builtin_routines():
        builtin_names.add(ref.name)
        refs[ref.name] = ref
    for ref in _user_routines(user_routines_dir()):
        refs[ref.name] = replace(ref, shadows_builtin=ref.name in builtin_names)
    return sorted(refs.values(), key=lambda ref: ref.name)


def _builtin_routines() -> list[RoutineRef]:
    """The routine files shipped as package data (installed as plain files)."""
    refs = []
    for entry in resources.files(_BUILTIN_PACKAGE).iterdir():
        if entry.name.endswith(_BUILTIN_SUFFIX) and entry.is_file():
            name = entry.name.removesuffix(_BUILTIN_SUFFIX)
            refs.append(RoutineRef(name, Path(str(entry)), builtin=True))
    return refs


def _user_routines(directory: Path) -> list[RoutineRef]:
    """The routine files in the user's directory; the first of two files with one name wins."""
    try:
        entries = sorted(directory.iterdir()) if directory.is_dir() else []
    except OSError as exc:
        _LOGGER.warning("Cannot list routines in %s: %s", directory, exc)
        return []
    refs: dict[str, RoutineRef] = {}
    for entry in entries:
        if not _is_routine_file(entry):
            continue
        if entry.stem in refs:
            _LOGGER.warning("Ignoring %s: %s has the same name", entry, refs[entry.stem].path)
            continue
        refs[entry.stem] = RoutineRef(entry.stem, entry, builtin=False)
    return list(refs.values())


def _is_routine_file(entry: Path) -> bool:
    """A visible .yaml or .yml file."""
    return entry.suffix in _USER_SUFFIXES and not entry.name.startswith(".") and entry.is_file()


def routine_files(name_or_path: str) -> list[Path]:
    """The routine files a command-line argument names: every one in a folder, else the one find_routine finds."""
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        return [find_routine(name_or_path)]
    try:
        found = sorted(entry for entry in path.iterdir() if _is_routine_file(entry))
    except OSError as exc:
        message = f"cannot list the folder: {exc.strerror or exc} (expected a readable folder of routine files)"
        raise RoutineFileError([Problem(str(path), 0, FILE_FIELD, message)]) from None
    if not found:
        message = f"has no routine files (expected {' or '.join(_USER_SUFFIXES)} files in the folder)"
        raise RoutineFileError([Problem(str(path), 0, FILE_FIELD, message)])
    return found


def find_routine(name_or_path: str) -> Path:
    """The file for a path to an existing file, or for a routine name."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        message = (f"{quoted(name_or_path)} is a folder (expected a routine file or name; "
                   "`voicecoach check FOLDER` checks every routine in a folder)")  # fmt: skip
        raise RoutineFileError([Problem(_COMMAND_LINE, 0, _ROUTINE_ARGUMENT_FIELD, message)])
    refs = list_routines()
    for ref in refs:
        if ref.name == name_or_path:
            return ref.path
    message = _unknown_routine_message(name_or_path, [ref.name for ref in refs])
    raise RoutineFileError([Problem(_COMMAND_LINE, 0, _ROUTINE_ARGUMENT_FIELD, message)])


def _unknown_routine_message(name_or_path: str, known: list[str]) -> str:
    """Why a command-line routine cannot be found, with the names that can."""
    names = f"one of: {', '.join(known)}" if known else "a routine file (no routines are installed)"
    if "/" in name_or_path or os.sep in name_or_path or Path(name_or_path).suffix in _USER_SUFFIXES:
        return f"no such file {quoted(name_or_path)} (expected a routine file or {names})"
    hint = suggestion(name_or_path, known)
    return f"unknown routine {quoted(name_or_path)} (expected a file path or {names}{hint})"
