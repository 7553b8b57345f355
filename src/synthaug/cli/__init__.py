"""The ``synthaug`` command line: a thin typer layer over importable functions.

One file per command (as in spaCy's CLI). Each file registers its command on
:data:`synthaug.cli._app.app` and calls a plain function from the library; only this
package prints.
"""
