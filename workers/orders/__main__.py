"""`python -m workers.orders`: run the orders worker."""

from config.settings import get_settings
from workers.orders.bootstrap import bootstrap
from workers.runtime.service import main

if __name__ == "__main__":
    main(bootstrap(get_settings()), get_settings())
