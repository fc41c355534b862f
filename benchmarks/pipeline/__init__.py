"""`warren bench pipeline`: the runtime alone, against a raw aio-pika pipeline of the same hops.

The pipeline service (`contracts.py`, `service.py`, `handlers.py`, `bootstrap.py`) is built with
the public runtime API as a user would build one, but lives here, outside `workers/`: discovery,
`warren up`, `warren generate` and `warren verify` never see it.
"""
