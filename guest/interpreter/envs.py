"""Fetches the sandbox-global env vars from envd `GET /envs` (e2b-protocol.md §3.4, §4.4)."""

import json
import logging
import os
from typing import Dict, Optional

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

log = logging.getLogger("interpreter.envs")

# envd listens on 49983 inside the guest (§3); overridable so tests can point at a real server.
ENVD_URL = os.environ.get("ONEBOX_ENVD_URL", "http://127.0.0.1:49983")


async def fetch_envs(access_token: Optional[str]) -> Dict[str, str]:
    """The global env map, or {} when envd is absent or refuses (the template tolerates that)."""
    headers = {}
    if access_token:
        headers["X-Access-Token"] = access_token  # forwarded from /execute (§2.2)
    try:
        response = await AsyncHTTPClient().fetch(
            ENVD_URL + "/envs", headers=headers, connect_timeout=1.0, request_timeout=3.0
        )
        body = json.loads(response.body or b"{}")
    except (HTTPClientError, OSError, ValueError) as err:
        log.debug("envd /envs unavailable: %s", err)
        return {}
    if not isinstance(body, dict):
        return {}
    return {str(k): str(v) for k, v in body.items() if v is not None}
