"""`python -m workers.provider`: run the card provider over HTTP."""

from __future__ import annotations

import uvicorn

from workers.provider.app import create_app
from workers.provider.settings import ProviderSettings

if __name__ == "__main__":
    settings = ProviderSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
