"""The ``modelmeter`` command: one module per command group."""

from __future__ import annotations

import click

from modelmeter import __version__
from modelmeter.cli.bench import bench
from modelmeter.cli.db import db
from modelmeter.cli.deploy import deploy
from modelmeter.cli.eval import eval_cmd
from modelmeter.cli.keys import keys
from modelmeter.cli.runs import runs
from modelmeter.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelmeter")
def cli() -> None:
    """A metered OpenAI-compatible gateway with a Usage tab."""


cli.add_command(serve)
cli.add_command(deploy)
cli.add_command(db)
cli.add_command(bench)
cli.add_command(eval_cmd)
cli.add_command(runs)
cli.add_command(keys)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
