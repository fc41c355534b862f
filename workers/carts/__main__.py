"""`python -m workers.carts`: run the carts worker, its HTTP API and its outbox relay."""

from __future__ import annotations

from config.settings import get_settings
from workers.carts.bootstrap import bootstrap
from workers.runtime.service import main

if __name__ == "__main__":
    main(bootstrap(get_settings()), get_settings())
