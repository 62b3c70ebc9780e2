"""`python -m kernel --foreground`: the kernel process (what `deskpilot kernel start` runs)."""
from __future__ import annotations

import sys

from kernel.daemon import AlreadyRunning, run_foreground, setup_logging
from kernel.paths import locations


def main() -> int:
    where = locations().ensure()
    setup_logging(where, foreground="--quiet" not in sys.argv)
    try:
        return run_foreground(where)
    except AlreadyRunning as exc:
        sys.stderr.write(f"deskpilot: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
