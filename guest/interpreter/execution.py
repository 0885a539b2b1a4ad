"""Runs one /execute request on a context's kernel and turns its messages into NDJSON lines (§4.2)."""

import asyncio
import json
import logging
import queue
import re
import shlex
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Protocol

from clone_reseed import reseed_code, sandbox_identity
from contexts import Context, Contexts
from results import result_line

log = logging.getLogger("interpreter.execution")

KEEPALIVE_S = 5.0  # §4.2: a keepalive every 5 s while idle, so a vanished client is noticed
POLL_S = 0.5  # how often a silent kernel is checked for a gone client or a dead kernel
INTERRUPT_GRACE_S = 10.0  # how long an interrupted cell may take to stop before we move on


class Output(Protocol):
    """Where the lines go (the HTTP response); `send` never raises, `gone` says the client left."""

    async def send(self, line: Dict[str, Any]) -> None: ...

    def gone(self) -> bool: ...

    def idle_for(self) -> float: ...


def _stamp(msg: Dict[str, Any]) -> str:
    date = msg.get("header", {}).get("date")
    return date.isoformat() if hasattr(date, "isoformat") else str(date or "")


def message_line(msg: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The line for one iopub message of our cell, or None for messages the stream omits."""
    kind, content = msg["msg_type"], msg["content"]
    if kind == "stream":
        name = "stderr" if content.get("name") == "stderr" else "stdout"
        return {"type": name, "text": content.get("text", ""), "timestamp": _stamp(msg)}
    if kind == "execute_input":
        return {"type": "number_of_executions", "execution_count": content.get("execution_count")}
    if kind == "execute_result":
        return result_line(dict(content.get("data", {})), True)
    if kind in ("display_data", "update_display_data"):
        return result_line(dict(content.get("data", {})), False)
    if kind == "error":
        return {"type": "error", "name": content.get("ename", ""), "value": content.get("evalue", ""),
                "traceback": "\n".join(content.get("traceback", []))}
    return None


_BASH_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_code(language: str, set_vars: Dict[str, str], unset: list) -> str:
    """Code that sets and unsets env vars inside the kernel (how the template injects `env_vars`, §4.4)."""
    if language == "python":
        lines = []
        if set_vars:
            lines.append(f"__import__('os').environ.update({set_vars!r})")
        for key in unset:
            lines.append(f"__import__('os').environ.pop({key!r}, None)")
        return "\n".join(lines)
    if language in ("javascript", "typescript"):
        # JSON is valid JavaScript and TypeScript; js_kernel.py runs silent code untranspiled.
        lines = [f"Object.assign(process.env, {json.dumps(set_vars)});"] if set_vars else []
        lines += [f"delete process.env[{json.dumps(key)}];" for key in unset]
        return "\n".join(lines)
    if language == "r":
        # R strings take JSON's escapes; non-ASCII stays literal (R rejects escaped surrogate pairs).
        lines = [f"Sys.setenv({json.dumps(k, ensure_ascii=False)} = {json.dumps(v, ensure_ascii=False)})" for k, v in set_vars.items()]
        if unset:
            lines.append(f"Sys.unsetenv(c({', '.join(json.dumps(k) for k in unset)}))")
        return "\n".join(lines)
    if language == "java":
        # Java cannot set its env: write into the map behind System.getenv() (java_kernel.py opens
        # java.util for it). JSON strings are Java string literals (a \uXXXX escape never
        # makes a line break: JSON writes those as \n, \r).
        lines = ['{ var m = System.getenv(); var f = m.getClass().getDeclaredField("m"); f.setAccessible(true);',
                 '@SuppressWarnings("unchecked") var w = (java.util.Map<String, String>) f.get(m);']
        lines += [f"w.put({json.dumps(k)}, {json.dumps(v)});" for k, v in set_vars.items()]
        lines += [f"w.remove({json.dumps(k)});" for k in unset]
        return "\n".join(lines) + " }" if set_vars or unset else ""
    # bash: only names the shell can hold
    lines = [f"export {k}={shlex.quote(v)}" for k, v in set_vars.items() if _BASH_NAME.match(k)]
    lines += [f"unset {k}" for k in unset if _BASH_NAME.match(k)]
    return "\n".join(lines)


async def run_silent(kc, code: str, timeout: float = 30.0) -> None:
    """Executes bookkeeping code without output or history and waits for its reply."""
    if not code:
        return
    try:
        msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False, stop_on_error=False)
        await _await_reply(kc, msg_id, timeout)
    except (Exception, asyncio.CancelledError) as err:  # channels closed by a restart or removal
        log.warning("bookkeeping code not run: %r", err)


async def _await_reply(kc, msg_id: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            reply = await kc.get_shell_msg(timeout=max(0.05, deadline - loop.time()))
        except queue.Empty:
            break
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            return
    log.warning("no reply to %s within %.0fs", msg_id, timeout)


async def _wait_for_lock(ctx: Context, out: Output) -> bool:
    """Takes the context's lock, sending keepalives meanwhile; False if the client left first."""
    acquire = asyncio.ensure_future(ctx.lock.acquire())
    while True:
        done, _ = await asyncio.wait({acquire}, timeout=POLL_S)
        if done:
            return True
        if out.gone():
            if not acquire.cancel():  # it completed after all: give the lock back
                ctx.lock.release()
            return False
        if out.idle_for() >= KEEPALIVE_S:
            await out.send({"type": "keepalive"})


def _ended_line(ctx: Context) -> Dict[str, Any]:
    return {"type": "error", "name": "ContextRestarted" if not ctx.removed else "ContextRemoved",
            "value": f"Context {ctx.id} was {ctx.ended} during the execution", "traceback": ""}


async def _pump(ctx: Context, kc, generation: int, msg_id: str, out: Output) -> str:
    """Streams the cell's iopub messages until the kernel is idle.

    Returns "idle", "died" (the kernel process is gone) or "replaced" (restarted or removed)."""
    loop = asyncio.get_running_loop()
    give_up_at: Optional[float] = None
    while True:
        if ctx.generation != generation:
            return "replaced"
        try:
            msg = await kc.get_iopub_msg(timeout=POLL_S)
        except queue.Empty:
            if out.gone() and give_up_at is None:
                # §4.2: a client disconnect interrupts the kernel
                log.info("context %s: client gone, interrupting", ctx.id)
                await ctx.km.interrupt_kernel()
                give_up_at = loop.time() + INTERRUPT_GRACE_S
            elif give_up_at is not None and loop.time() > give_up_at:
                log.warning("context %s: cell ignored the interrupt", ctx.id)
                return "idle"
            if ctx.generation != generation:
                return "replaced"
            if not await ctx.km.is_alive():
                return "died"
            if out.idle_for() >= KEEPALIVE_S:
                await out.send({"type": "keepalive"})
            continue
        except (Exception, asyncio.CancelledError):
            # Closing the channels (restart, removal) cancels the pending zmq poll.
            if ctx.generation != generation:
                return "replaced"
            raise
        if log.isEnabledFor(logging.DEBUG):
            log.debug("context %s: iopub %s for %s", ctx.id, msg["msg_type"], msg.get("parent_header", {}).get("msg_id"))
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue  # leftovers of bookkeeping or of an earlier, interrupted cell
        if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
            return "idle"
        line = message_line(msg)
        if line is not None:
            await out.send(line)


async def execute(contexts: Contexts, ctx: Context, code: str, env_vars: Dict[str, str],
                  global_envs: Dict[str, str], out: Output) -> None:
    """The whole stream of one /execute call; always ends with end_of_execution (§4.2)."""
    if not await _wait_for_lock(ctx, out):
        return
    try:
        async with ctx.kernel_lock:  # not while a restart is under way
            if ctx.removed:
                await out.send(_ended_line(ctx))
                return
            if not await contexts.ensure_alive(ctx):
                await out.send({"type": "stderr", "timestamp": datetime.now(timezone.utc).isoformat(),
                                "text": "The kernel had died and was restarted; its state is lost.\n"})
            kc, generation = ctx.kc, ctx.generation
            # A kernel that came out of a template snapshot shares its generators' state with every
            # other clone until it reseeds from the (host-reseeded) guest CRNG.
            # It rides on the env-var bookkeeping execute: one silent execute per cell, as before.
            identity = sandbox_identity()
            reseed = reseed_code(ctx.language) if ctx.seeded_for != identity else ""
            ctx.seeded_for = identity
            # Sandbox-global vars, then this call's vars on top; the latter are undone afterwards.
            await run_silent(kc, reseed + env_code(ctx.language, {**global_envs, **env_vars}, []))
            # stop_on_error=False: each runCode stands alone. With the default, ipykernel aborts
            # requests queued behind a failed cell, so the next call would get no output at all.
            msg_id = kc.execute(code, silent=False, store_history=True, allow_stdin=False, stop_on_error=False)
        outcome = await _pump(ctx, kc, generation, msg_id, out)
        if outcome == "replaced":
            await out.send(_ended_line(ctx))
        elif outcome == "died":
            await out.send({"type": "error", "name": "KernelDied",
                            "value": f"The kernel of context {ctx.id} died during execution; it was restarted.",
                            "traceback": ""})
            async with ctx.kernel_lock:
                if ctx.generation == generation:
                    await contexts.ensure_alive(ctx)
        else:
            try:
                await _await_reply(kc, msg_id, 5.0)
            except (Exception, asyncio.CancelledError) as err:  # a restart closed the channels
                log.warning("context %s: no execute_reply: %r", ctx.id, err)
            if env_vars and ctx.generation == generation:
                restore = {k: global_envs[k] for k in env_vars if k in global_envs}
                drop = [k for k in env_vars if k not in global_envs]
                await run_silent(kc, env_code(ctx.language, restore, drop))
    finally:
        ctx.lock.release()
        await out.send({"type": "end_of_execution"})
