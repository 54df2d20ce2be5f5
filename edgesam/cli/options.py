"""Options several verbs share."""
from __future__ import annotations

import click

overwrite_option = click.option(
    "--overwrite", is_flag=True,
    help="Write into an existing output that edgesam did not write (same-named files are replaced; "
         "no other file is removed). Without it such an output is refused.")
