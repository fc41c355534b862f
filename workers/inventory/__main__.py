"""`python -m workers.inventory` runs the inventory worker."""

from config.settings import get_settings
from workers.inventory.bootstrap import bootstrap
from workers.runtime.service import main

if __name__ == "__main__":
    main(bootstrap(get_settings()), get_settings())
