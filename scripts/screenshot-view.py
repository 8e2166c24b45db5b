"""Take the README's screenshot of the card view (docs/view.png) with Debian's Chromium.

    .venv/bin/python scripts/screenshot-view.py [--example dvt-likely] [--out docs/view.png]

Starts the service on a free loopback port (development mode, a throw-away feedback store),
opens /view?example=NAME in headless Chromium through Playwright, and saves the first screen.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from cds.api import create_app
from cds.config import Settings

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default="dvt-likely")
    parser.add_argument("--out", default="docs/view.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database_url=f"sqlite:///{tmp}/feedback.sqlite3"))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=options.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/view?example={options.example}")
            Path(options.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=options.out)
            browser.close()
        server.should_exit = True
        thread.join(timeout=5)
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
