"""The typer application every command module registers on."""

import typer

app = typer.Typer(
    name="synthaug",
    help="Generate labelled image datasets with text-to-image models, train classifiers "
    "with uncertainty methods on real, synthetic and mixed data, and measure what "
    "synthetic data is worth.",
    no_args_is_help=True,
    add_completion=False,
    # Our own errors become one line (see main.py); anything else is a bug and keeps a
    # plain traceback rather than a multi-screen rich one.
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # A callback keeps typer in multi-command mode even while only one command is
    # registered; without it `synthaug datasets` would become plain `synthaug`.
    pass
