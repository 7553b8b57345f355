"""``python -m synthaug``: the same command line as the ``synthaug`` script."""

from synthaug.cli.main import main

if __name__ == "__main__":
    main()
