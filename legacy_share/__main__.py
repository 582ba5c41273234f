"""`python -m legacy_share` and the `legacy-share` command: the command line."""

import sys


def run():
    """The command line's exit code; a Ctrl-C while the package itself is imported (before
    `cli.main` handles it) is its one line and 130 too, not a traceback."""
    try:
        from legacy_share.cli import main  # pylint: disable=import-outside-toplevel
    except KeyboardInterrupt:
        sys.stderr.write("legacy-share: interrupted; nothing was written.\n")
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
