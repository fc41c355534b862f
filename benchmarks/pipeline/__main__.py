"""`python -m benchmarks.pipeline STEP`: run one pipeline step's worker with its outbox relay."""

from __future__ import annotations

import sys

from benchmarks.pipeline.bootstrap import bootstrap
from benchmarks.pipeline.service import SERVICES
from config.settings import get_settings
from workers.runtime.service import main

if __name__ == "__main__":
    names = [s.name for s in SERVICES]
    if len(sys.argv) != 2 or sys.argv[1] not in names:
        raise SystemExit(f"usage: python -m benchmarks.pipeline {{{','.join(names)}}}")
    main(bootstrap(get_settings(), sys.argv[1]), get_settings())
