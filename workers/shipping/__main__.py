"""`python -m workers.shipping`: run the shipping worker with its outbox relay."""

from __future__ import annotations

from config.settings import get_settings
from workers.runtime.service import main
from workers.shipping.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap(get_settings()), get_settings())
