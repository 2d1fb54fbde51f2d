"""The Rebalance page in the Airflow UI (see ``app.py`` and docs/ui.md).

This module stays import-light: the plugin imports it in every Airflow component, and only the
API server ever serves a request. ``LazyApp`` is the ASGI app the plugin registers; it builds the
FastAPI app (``rebalance.ui.app.create_app``) on its first request.
"""

from __future__ import annotations

import threading
from typing import Any

URL_PREFIX = "/rebalance"


class LazyApp:
    """An ASGI app that imports and builds the real one on first use."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from rebalance.ui.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.get()(scope, receive, send)


app = LazyApp()

FASTAPI_APP = {"app": app, "url_prefix": URL_PREFIX, "name": "Rebalance"}

EXTERNAL_VIEW = {
    "name": "Rebalance",
    "href": URL_PREFIX + "/",
    "destination": "nav",
    "url_route": "rebalance",  # shown inside the Airflow UI at /plugin/rebalance
}
