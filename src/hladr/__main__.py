"""``python -m hladr``: the same as the ``hladr`` command."""

from .cli import main_cli

main_cli()
