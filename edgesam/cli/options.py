"""Options several verbs share, and the number type every float flag takes."""
from __future__ import annotations

import math

import click


class FiniteFloat(click.FloatRange):
    """A float flag that must be a finite number (in [min, max] when given). click's float and FloatRange
    take "nan" and "inf": a NaN floor never fails (`--max-encoder-ms nan` passed every bundle), a NaN
    learning rate trains NaN weights, and "inf" reaches JSON files as the non-standard `Infinity`."""

    name = "number"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


overwrite_option = click.option(
    "--overwrite", is_flag=True,
    help="Write into an existing output that edgesam did not write (same-named files are replaced; "
         "no other file is removed). Without it such an output is refused.")
