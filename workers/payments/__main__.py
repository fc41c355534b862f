"""`python -m workers.payments`: run the payments worker with its outbox relay."""

from __future__ import annotations

from config.settings import get_settings
from workers.payments.bootstrap import bootstrap
from workers.runtime.service import main

if __name__ == "__main__":
    main(bootstrap(get_settings()), get_settings())
