"""The code-interpreter HTTP server on 0.0.0.0:49999: /health, /execute, /contexts (e2b-protocol.md §4)."""

import asyncio
import json
import logging
import math
import os
import signal
import socket
import time
from typing import Any, Dict, Optional

import tornado.httpserver
import tornado.web
from tornado.iostream import StreamClosedError

from contexts import Context, Contexts, UnsupportedLanguage
from envs import fetch_envs
from execution import execute

log = logging.getLogger("interpreter")


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON.parse in the SDK rejects them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(obj: Any) -> str:
    try:
        return json.dumps(obj, allow_nan=False, default=str)
    except ValueError:
        return json.dumps(_finite(obj), allow_nan=False, default=str)


class HttpOutput:
    """The NDJSON response of one /execute call; notices a client that went away (§4.2)."""

    def __init__(self, handler: tornado.web.RequestHandler) -> None:
        self.handler = handler
        self.closed = False
        self.last_write = time.monotonic()

    async def send(self, line: Dict[str, Any]) -> None:
        if self.gone():
            return
        try:
            self.handler.write(dumps(line) + "\n")
            await self.handler.flush()
            self.last_write = time.monotonic()
        except StreamClosedError:
            self.closed = True

    def idle_for(self) -> float:
        return time.monotonic() - self.last_write

    def gone(self) -> bool:
        if self.closed:
            return True
        stream = self.handler.request.connection.stream
        sock = getattr(stream, "socket", None)
        if sock is None or stream.closed():
            self.closed = True
            return True
        # The client sends nothing more during the response, so a readable EOF means it hung
        # up (an abort on timeoutMs). Peeking notices that at once, before a write fails.
        try:
            if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                self.closed = True
        except BlockingIOError:
            pass
        except OSError:
            self.closed = True
        return self.closed


class Base(tornado.web.RequestHandler):
    def initialize(self, contexts: Contexts) -> None:
        self.contexts = contexts

    def text(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(message)

    def json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(value))

    def body_json(self) -> Optional[Dict[str, Any]]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def context_or_404(self, ctx_id: str) -> Optional[Context]:
        ctx = self.contexts.get(ctx_id)
        if ctx is None:
            self.text(404, f"Context {ctx_id} not found")  # §4.1: NotFoundError in the SDK
        return ctx


class Health(Base):
    def get(self) -> None:
        self.json("OK")  # §4.4: GET /health -> "OK"


class Execute(Base):
    def on_connection_close(self) -> None:
        if getattr(self, "out", None) is not None:
            self.out.closed = True

    async def post(self) -> None:
        body = self.body_json()
        if body is None or not isinstance(body.get("code"), str):
            return self.text(400, "Body must be a JSON object with a string `code`")
        ctx_id, language = body.get("context_id"), body.get("language")
        if ctx_id and language:
            return self.text(400, "Only one of context_id or language can be provided")  # §4.1
        env_vars = body.get("env_vars") or {}
        if not isinstance(env_vars, dict):
            return self.text(400, "`env_vars` must be an object")
        env_vars = {str(k): "" if v is None else str(v) for k, v in env_vars.items()}
        if ctx_id:
            ctx = self.context_or_404(str(ctx_id))
            if ctx is None:
                return
        else:
            try:
                ctx = await self.contexts.default(language)
            except UnsupportedLanguage as err:
                return self.text(400, str(err))
            except Exception as err:
                log.exception("starting a %s kernel", language)
                return self.text(500, f"Failed to start a {language} kernel: {err}")
        global_envs = await fetch_envs(self.request.headers.get("X-Access-Token"))
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Cache-Control", "no-cache")
        self.out = HttpOutput(self)
        try:
            await self.flush()  # headers now: requestTimeoutMs only bounds the wait for them (§4.1)
        except StreamClosedError:
            return
        await execute(self.contexts, ctx, body["code"], env_vars, global_envs, self.out)
        if not self.out.gone():
            self.finish()


class ContextList(Base):
    def get(self) -> None:
        self.json(self.contexts.list())

    async def post(self) -> None:
        body = self.body_json()
        if body is None:
            return self.text(400, "Body must be a JSON object")
        try:
            ctx = await self.contexts.create(body.get("language"), body.get("cwd"))
        except UnsupportedLanguage as err:
            return self.text(400, str(err))
        except Exception as err:
            log.exception("creating a context")
            return self.text(500, f"Failed to create the context: {err}")
        self.json(ctx.describe())


class ContextItem(Base):
    async def delete(self, ctx_id: str) -> None:
        ctx = self.context_or_404(ctx_id)
        if ctx is not None:
            await self.contexts.remove(ctx)
            self.json(None)


class ContextRestart(Base):
    async def post(self, ctx_id: str) -> None:
        ctx = self.context_or_404(ctx_id)
        if ctx is None:
            return
        try:
            await self.contexts.restart(ctx)
        except Exception as err:
            log.exception("restarting context %s", ctx_id)
            return self.text(500, f"Failed to restart context {ctx_id}: {err}")
        self.json(None)


def make_app(contexts: Contexts) -> tornado.web.Application:
    args = {"contexts": contexts}
    return tornado.web.Application([
        (r"/health", Health, args),
        (r"/execute", Execute, args),
        (r"/contexts", ContextList, args),
        (r"/contexts/([^/]+)", ContextItem, args),
        (r"/contexts/([^/]+)/restart", ContextRestart, args),
    ])


async def main() -> None:
    logging.basicConfig(level=os.environ.get("ONEBOX_INTERPRETER_LOG", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host = os.environ.get("ONEBOX_INTERPRETER_HOST", "0.0.0.0")
    port = int(os.environ.get("ONEBOX_INTERPRETER_PORT", "49999"))
    contexts = Contexts()
    # §4.4: the default python context exists before the server answers /health.
    await contexts.default("python")
    server = tornado.httpserver.HTTPServer(make_app(contexts), idle_connection_timeout=640)
    server.listen(port, host)
    log.info("listening on %s:%d, kernels run as %s", host, port, contexts.run_as.name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await contexts.close()


if __name__ == "__main__":
    asyncio.run(main())
