"""Float flags and config numbers take finite numbers only: NaN passes every bound check by comparison."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from edgesam.cli import main as cli_main
from edgesam.cli.options import FiniteFloat
from edgesam.utils.config import ConfigError, check_number


@click.command()
@click.option("--floor", type=FiniteFloat())
@click.option("--jitter", type=FiniteFloat(min=0))
def numbers(floor, jitter):
    click.echo(f"{floor} {jitter}")


@pytest.mark.parametrize("args, message", [
    (["--floor", "nan"], "'nan' is not a finite number"),
    (["--floor", "inf"], "'inf' is not a finite number"),
    (["--floor", "-Infinity"], "'-Infinity' is not a finite number"),
    (["--jitter", "-0.1"], "not in the range x>=0"),
    (["--floor", "abc"], "'abc' is not a valid float"),
])
def test_a_float_flag_refuses_what_is_not_a_finite_number(args, message):
    result = CliRunner().invoke(numbers, args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_finite_float_flag_takes_numbers():
    result = CliRunner().invoke(numbers, ["--floor", "1e-3", "--jitter", "0.05"])
    assert result.exit_code == 0 and result.output.strip() == "0.001 0.05"


@pytest.mark.parametrize("verb", [
    ["check", "--max-encoder-ms", "nan"], ["check", "--min-iou", "nan"], ["bench", "--max-latency-ms", "nan"],
    ["eval", "--box-jitter", "nan"], ["inspect", "--cycle-ms", "inf"], ["prune", "--ratio", "nan"],
])
def test_the_verbs_float_flags_are_finite(verb):
    result = CliRunner().invoke(cli_main.main, verb + ["x"])
    assert result.exit_code == 2 and "is not a finite number" in result.output, result.output


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_config_numbers_are_finite(value):
    with pytest.raises(ConfigError, match="lr_decoder: expected a number >= 0"):
        check_number("lr_decoder", value, 0)


@pytest.mark.parametrize("args, message", [
    (["data", "synth", "OUT", "--count", "0", "--free", "0"], "nothing to write"),  # printed 'wrote' and wrote nothing
    (["data", "synth", "OUT", "--size", "100000"], "not in the range 16<=x<=8192"),  # ended in a MemoryError
    (["predict", "IMG", "--bundle", "BUNDLE", "--image-size", "64", "--box", "1,1,9,9", "--out", "OUT"],
     "--model and --image-size go with --checkpoint"),  # were ignored without a word
])
def test_flags_that_cannot_do_what_they_say_are_refused(tmp_path, args, message):
    (tmp_path / "BUNDLE").mkdir()
    (tmp_path / "IMG").write_bytes(b"")
    args = [str(tmp_path / a) if a in ("OUT", "IMG", "BUNDLE") else a for a in args]
    result = CliRunner().invoke(cli_main.main, args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "OUT").exists()
