"""`python -m schoolsurge.platform`: the same options as `schoolsurge target` (used by PlatformProcess)."""

from __future__ import annotations

import argparse
import sys

from schoolsurge.platform.server import add_target_arguments, run_target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schoolsurge.platform", description=__doc__)
    add_target_arguments(parser)
    return run_target(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
