"""ASGI entry point for uvicorn workers: `uvicorn cds.asgi:app`."""

from cds.api import create_app

app = create_app()
