"""``python -m casty_trio``: the command-line interface."""

from casty_trio.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
