"""The accounts service: registers users and their API keys."""
