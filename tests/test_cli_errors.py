"""The CLI's one error boundary (one `Error:` line, exit 1, --debug for the traceback) and its thread sizing."""
from __future__ import annotations

import errno
import os

import click
import pytest
from click.testing import CliRunner

from edgesam_runtime import threads
from edgesam.cli import main as cli_main
from edgesam.cli.errors import describe

RAISED: list[BaseException] = []
SEEN: dict = {}


@click.command()
def boom():
    """Raise whatever the test queued."""
    raise RAISED[0]


@click.command()
def show_threads():
    """Record what a verb sees of the thread settings."""
    SEEN.update(threads=threads.cpu_threads(), omp=os.environ.get("OMP_NUM_THREADS"),
                policy=os.environ.get("OMP_WAIT_POLICY"))


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setitem(cli_main.COMMANDS, "boom", "tests.test_cli_errors:boom")
    monkeypatch.setitem(cli_main.COMMANDS, "show-threads", "tests.test_cli_errors:show_threads")
    monkeypatch.delenv("EDGESAM_DEBUG", raising=False)

    def invoke(exc, *args, env=None):
        RAISED[:] = [exc]
        return CliRunner().invoke(cli_main.main, [*args, "boom"], env=env)
    return invoke


@pytest.mark.parametrize("exc, line", [
    (ValueError("data.png: unreadable image"), "Error: data.png: unreadable image"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/model.pth"), "Error: /x/model.pth: not found; check the path"),
    (OSError(errno.ENOSPC, "No space left on device", "runs/b/encoder.onnx"),
     "Error: runs/b/encoder.onnx: no space left on the device; free some space"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/a.png"), "Error: /data/a.png: permission denied"),
    (MemoryError(), "Error: out of CPU memory (MemoryError): lower the batch size"),
    (KeyError("image_encoder"), "Error: internal error (KeyError: 'image_encoder'); rerun with `edgesam --debug"),
    (click.ClickException("first line\n  second line"), "Error: first line second line"),
])
def test_one_error_line_and_exit_code_1(cli, exc, line):
    result = cli(exc)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    errors = [x for x in result.output.splitlines() if x.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].startswith(line), result.output
    assert "Traceback" not in result.output


def test_debug_flag_and_environment_let_the_traceback_through(cli):
    result = cli(KeyError("x"), "--debug")
    assert isinstance(result.exception, KeyError) and "Error:" not in result.output
    result = cli(KeyError("x"), env={"EDGESAM_DEBUG": "1"})
    assert isinstance(result.exception, KeyError)
    result = cli(KeyError("x"), env={"EDGESAM_DEBUG": "0"})
    assert isinstance(result.exception, SystemExit) and "internal error" in result.output


def test_errors_defined_in_edgesam_keep_their_message():
    from edgesam.models import CheckpointError
    from edgesam_runtime.errors import BackendError

    assert describe(CheckpointError("m.pth: truncated")) == "m.pth: truncated"
    assert describe(BackendError("onnxruntime: CUDA provider missing")) == "onnxruntime: CUDA provider missing"
    assert describe(RuntimeError("boom")).startswith("internal error (RuntimeError: boom)")


def test_cpu_threads_flag_is_used_then_restored(cli, monkeypatch):
    monkeypatch.delenv("EDGESAM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    result = CliRunner().invoke(cli_main.main, ["--cpu-threads", "3", "show-threads"])
    assert result.exit_code == 0, result.output
    assert SEEN == {"threads": 3, "omp": "3", "policy": SEEN["policy"]} and SEEN["policy"] in ("PASSIVE", os.environ.get("OMP_WAIT_POLICY"))
    assert os.environ["OMP_NUM_THREADS"] == "7" and threads.cpu_threads() == 7  # the user's setting, back
    assert CliRunner().invoke(cli_main.main, ["--cpu-threads", "0", "show-threads"]).exit_code == 2


@pytest.mark.parametrize("value", ["abc", "-1", "0"])
def test_a_bad_thread_count_in_the_environment_is_one_error_line(cli, value):
    result = CliRunner().invoke(cli_main.main, ["show-threads"], env={"EDGESAM_THREADS": value})
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == f"Error: $EDGESAM_THREADS: expected a positive number of threads or 'auto', got {value!r}"


def test_a_line_break_in_a_file_name_is_shown_escaped_not_as_a_line_of_its_own(cli):
    result = cli(ValueError("runs/a.png\nOK: 3 images: unreadable image"))
    assert result.output.splitlines() == ["Error: runs/a.png\\nOK: 3 images: unreadable image"]
