"""`python -m legacy_share`: the `legacy-share` command line."""

import sys

from legacy_share.cli import main

if __name__ == "__main__":
    sys.exit(main())
