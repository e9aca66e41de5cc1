"""Every error cgx raises for something a user can fix, in one place.

Each message names the file, the recipe key or the plugin, and what would be accepted. The command
line prints ``cgx: error: MESSAGE`` for any ``CgxError`` (exit code 2) and never a traceback.
"""
from __future__ import annotations

from .safe_text import shown


class CgxError(Exception):
    """Base of every user-facing cgx error."""


class ConfigError(CgxError, ValueError):
    """A recipe problem; the message names the file and the dotted key."""


class PluginError(CgxError, ValueError):
    """A plugin problem: unknown name, bad arguments, duplicate, broken, or an object that does not
    fit its kind's interface (``cgx.plugins.types``); the message names the plugin and its source."""


class DataError(CgxError, ValueError):
    """A data problem (missing or empty folder, unreadable image, bad shard); names the path."""


class CheckpointError(CgxError, RuntimeError):
    """A checkpoint that is missing, unreadable, of another format, or does not match the recipe."""


class UsageError(CgxError, ValueError):
    """A command-line option (or the matching function argument) out of range; names the option."""


class PrecisionError(CgxError, ValueError):
    """A precision setting this machine cannot honour (fp16 without CUDA); names the recipe key."""


class SetupError(CgxError, ValueError):
    """A run that cannot be set up as asked: a missing package, an unsupported strategy, ZeRO stage
    or memory format on this device; names the recipe key and what is supported."""


class NonFiniteLossError(CgxError, RuntimeError):
    """Training diverged: a loss became NaN or inf (the run stops without writing a checkpoint)."""


class ExportError(CgxError, RuntimeError):
    """An export that cannot be written as asked, or whose result does not match PyTorch; names the file."""


class TilingError(CgxError, ValueError):
    """``cgx translate --tile`` with a generator that cannot be tiled exactly (one that does not declare
    its stages, or has a layer that may look at the whole image); names the generator and the layer."""


class DownloadError(CgxError, RuntimeError):
    """A download that failed (unreachable server, HTTP error, connection lost, wrong size or checksum);
    names the URL and where the partial download is kept for a resume."""


class ArchiveError(CgxError, ValueError):
    """An archive that cannot be unpacked safely (corrupt, a member outside the target folder, a link or
    device), or a target folder that exists already; names the archive, the member and the folder."""


def user_message(error: BaseException) -> str | None:
    """The one line the command line prints for ``error``, or None for a bug (a traceback is kept).

    Besides every CgxError, an OSError about a named file (permission denied, a read-only or full
    disk, a path through a file, a file deleted meanwhile) is the user's to fix: it is named, never
    a traceback, wherever in cgx it is raised.

    The line is ``shown``: a name from outside quoted in it (a file, an archive member, a recipe value)
    cannot move the cursor, set the terminal's title or start a line of its own."""
    if isinstance(error, CgxError):
        return shown(error)
    if isinstance(error, OSError) and error.filename is not None:
        names = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 is not None else "")
        return shown(f"{names}: {error.strerror or type(error).__name__}")
    return None
