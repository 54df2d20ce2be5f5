"""The CLI's error boundary: any exception a verb raises becomes one `Error: ...` line and exit code 1.

What the line says depends on where the exception came from:

- errors edgesam raises on purpose (every exception class defined in `edgesam` or `edgesam_runtime`) and
  ValueErrors (how bad data and bad values are reported throughout) already name the file or field
  and what was expected: their message is shown as it is, folded onto one line;
- OS errors (file missing, permission denied, disk full, a folder where a file was expected) name the
  file and the usual fix;
- running out of memory names the knobs that lower it;
- anything else is a bug in edgesam: the line says so and how to see the traceback.

`edgesam --debug VERB ...` or `EDGESAM_DEBUG=1` lets the original exception through with its
traceback. Nothing here imports torch: the boundary must not slow down `edgesam --help`.
"""
from __future__ import annotations

import errno
import os

import click

DEBUG_ENV = "EDGESAM_DEBUG"
DEBUG_HINT = f"rerun with `edgesam --debug ...` (or {DEBUG_ENV}=1) to see the traceback"

_OS_FIXES = {
    errno.ENOENT: "not found; check the path",
    errno.EACCES: "permission denied; check the file's owner and permissions",
    errno.EPERM: "operation not permitted; check the file's owner and permissions",
    errno.ENOSPC: "no space left on the device; free some space (or write elsewhere) and rerun",
    errno.EDQUOT: "disk quota exceeded; free some space (or write elsewhere) and rerun",
    errno.EISDIR: "is a folder; expected a file",
    errno.ENOTDIR: "a part of this path is not a folder",
    errno.EROFS: "read-only file system; write the output elsewhere",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or lower --num-workers",
}


def debug_requested(flag: bool = False) -> bool:
    return flag or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def one_line(text: str) -> str:
    """Fold a multi-line message onto one line (the first line of a report must say it all)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def printable(text: str) -> str:
    """`text` with control characters shown as escapes: a file named "a\\nOK: ..." must not print a
    line of its own that looks like edgesam's."""
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in str(text))


def _is_ours(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("edgesam", "edgesam_runtime")


def describe(exc: BaseException) -> str:
    """The one line shown for `exc` (without the `Error: ` prefix click adds)."""
    name = type(exc).__name__
    message = one_line(str(exc))
    if isinstance(exc, OSError) and not _is_ours(exc):
        return _describe_os_error(exc, message)
    if name == "OutOfMemoryError" or isinstance(exc, MemoryError):
        where = "GPU" if name == "OutOfMemoryError" else "CPU"
        return (f"out of {where} memory ({name}): lower the batch size (--batch-size) or the input size "
                f"(--image-size), or free memory other programs hold, and rerun (README: Troubleshooting)")
    if _is_ours(exc) or isinstance(exc, ValueError):
        # these messages are one line by construction: a line break in them comes from data (a file
        # name), so it is shown escaped rather than folded, and the name stays recognisable
        return printable(str(exc).strip()) or name
    return f"internal error ({name}: {message or 'no message'}); {DEBUG_HINT}, and please report it"


def _describe_os_error(exc: OSError, message: str) -> str:
    filename = exc.filename
    if filename is None:
        return message or type(exc).__name__
    fix = _OS_FIXES.get(exc.errno, exc.strerror or type(exc).__name__)
    target = f" -> {exc.filename2}" if exc.filename2 else ""
    return f"{os.fsdecode(filename)}{target}: {fix}"


def to_click_error(exc: Exception) -> click.ClickException:
    """A ClickException (printed as `Error: ...`, exit code 1) for any exception a verb raised."""
    if isinstance(exc, click.ClickException):
        return exc
    return click.ClickException(describe(exc))
