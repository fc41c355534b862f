"""Run this worker with its outbox relay: `python -m workers.<name>` or `warren worker`."""

from __future__ import annotations

from config.settings import get_settings
from workers.accounts.bootstrap import bootstrap
from workers.runtime.service import main

if __name__ == "__main__":
    main(bootstrap(get_settings()), get_settings())
