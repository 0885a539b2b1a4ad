"""Code contexts: one real Jupyter kernel per context, run as the sandbox user (e2b-protocol.md §4.1, §4.4)."""

import asyncio
import logging
import os
import pwd
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

KERNEL_READY_TIMEOUT_S = float(os.environ.get("ONEBOX_INTERPRETER_KERNEL_TIMEOUT", "300"))
log = logging.getLogger("interpreter.contexts")

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.environ.get("ONEBOX_INTERPRETER_PYTHON", sys.executable)
# §4.4: kernels run as `user` with cwd /home/user when that user exists.
SANDBOX_USER = os.environ.get("ONEBOX_INTERPRETER_USER", "user")

# The kernels this template ships, on Debian packages (packages.txt). bash, javascript,
# typescript and java have no Debian kernel package, so they are our own wrapper kernels
# (bash_kernel.py, js_kernel.py on Debian's nodejs, java_kernel.py on its JDK's JShell); r is
# Debian's IRkernel.
KERNEL_ARGV = {
    "python": [PYTHON, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}",
               "--IPKernelApp.exec_files=" + os.path.join(HERE, "kernel_startup.py")],
    "bash": [PYTHON, os.path.join(HERE, "bash_kernel.py"), "-f", "{connection_file}"],
    "javascript": [PYTHON, os.path.join(HERE, "js_kernel.py"), "-f", "{connection_file}"],
    "typescript": [PYTHON, os.path.join(HERE, "js_kernel.py"), "--typescript", "-f", "{connection_file}"],
    # Debian's r-cran-irkernel, as its kernelspec (/usr/share/jupyter/kernels/ir/kernel.json) runs it.
    "r": ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
    "java": [PYTHON, os.path.join(HERE, "java_kernel.py"), "-f", "{connection_file}"],
}
# §4.4: `js` names javascript; E2B's SDKs also send `ts`.
ALIASES = {"python3": "python", "py": "python", "sh": "bash", "shell": "bash", "js": "javascript",
           "node": "javascript", "ts": "typescript"}


class UnsupportedLanguage(ValueError):
    pass


def normalize_language(language: Optional[str]) -> str:
    """python is the default (§4.1); aliases (`js`, `ts`, …) map to the kernel's language name."""
    if language is not None and not isinstance(language, str):
        raise UnsupportedLanguage(f"`language` must be a string, not {type(language).__name__}")
    name = (language or "python").strip().lower()
    name = ALIASES.get(name, name)
    if name not in KERNEL_ARGV:
        raise UnsupportedLanguage(
            f"Language {name!r} is not supported by this template (supported: {', '.join(sorted(KERNEL_ARGV))})")
    return name


@dataclass
class RunAs:
    """Who kernels run as: uid/gid/home, or None for the server's own user."""
    uid: Optional[int]
    gid: Optional[int]
    name: str
    home: str
    default_cwd: str
    own_cwd: bool = False  # default_cwd is a temp dir of ours, removed at close


def resolve_run_as() -> RunAs:
    try:
        pw = pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        pw = None
    if pw is not None and os.geteuid() in (0, pw.pw_uid):
        same = os.geteuid() == pw.pw_uid
        return RunAs(None if same else pw.pw_uid, None if same else pw.pw_gid, pw.pw_name, pw.pw_dir, pw.pw_dir)
    me = pwd.getpwuid(os.geteuid())
    return RunAs(None, None, me.pw_name, os.environ.get("HOME", me.pw_dir),
                 tempfile.mkdtemp(prefix="onebox-interpreter-"), own_cwd=True)


def make_run_root() -> str:
    """The kernels' connection files and sockets: under ONEBOX_INTERPRETER_RUN_DIR (service.conf
    sets /run/onebox/interpreter in the guest) so onebox's internals stay out of the user's /tmp
    (files.list("/tmp") shows none of them); a temp dir only where it is unset (dev and tests)."""
    base = os.environ.get("ONEBOX_INTERPRETER_RUN_DIR")
    if base:
        os.makedirs(base, mode=0o711, exist_ok=True)
        os.chmod(base, 0o711)
        return tempfile.mkdtemp(prefix="kernels-", dir=base)  # fresh per server start: no stale files
    return tempfile.mkdtemp(prefix="onebox-kernels-")


class UserKernelManager(AsyncKernelManager):
    """A kernel manager whose connection file the (unprivileged) kernel user can read."""
    owner: Optional[RunAs] = None

    def write_connection_file(self) -> None:
        super().write_connection_file()
        if self.owner is not None and self.owner.uid is not None:
            os.chown(self.connection_file, self.owner.uid, self.owner.gid)


@dataclass
class Context:
    id: str
    language: str
    cwd: str
    km: UserKernelManager
    kc: object
    run_dir: str
    # One execution at a time per context; others wait (and get keepalives, §4.2).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Replacing or removing the kernel, and starting a cell, never overlap. A restart does not
    # wait for a running cell (it may be the reason for the restart): it bumps `generation`,
    # and the cell's stream ends with an error saying why (`ended`).
    kernel_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    generation: int = 0
    # The sandbox id this kernel last reseeded its random generators under (clone_reseed.py).
    seeded_for: Optional[str] = None
    ended: str = ""
    removed: bool = False

    def describe(self) -> Dict[str, str]:
        return {"id": self.id, "language": self.language, "cwd": self.cwd}


class Contexts:
    def __init__(self) -> None:
        self.run_as = resolve_run_as()
        self.by_id: Dict[str, Context] = {}
        self.default_for: Dict[str, str] = {}  # language -> id of its default context
        self._default_lock = asyncio.Lock()
        self.run_root = make_run_root()
        os.chmod(self.run_root, 0o711)  # the kernel user must reach its own sub-directory

    def kernel_env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEBOX_", "JPY_"))}
        env.update(HOME=self.run_as.home, USER=self.run_as.name, LOGNAME=self.run_as.name)
        env.setdefault("SHELL", "/bin/bash")
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        # matplotlib's inline backend: a figure comes back as one PNG display_data (§4.3)
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silences debugpy's frozen-modules warning
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _prepare_dir(self, path: str, mode: int) -> None:
        os.makedirs(path, mode=mode, exist_ok=True)
        if self.run_as.uid is not None:
            os.chown(path, self.run_as.uid, self.run_as.gid)

    async def create(self, language: Optional[str], cwd: Optional[str]) -> Context:
        lang = normalize_language(language)
        cwd = cwd or self.run_as.default_cwd
        if not os.path.isdir(cwd):
            self._prepare_dir(cwd, 0o755)
        ctx_id = uuid.uuid4().hex
        run_dir = os.path.join(self.run_root, ctx_id)
        self._prepare_dir(run_dir, 0o700)
        km = UserKernelManager(connection_file=os.path.join(run_dir, "kernel.json"))
        km.owner = self.run_as
        km._kernel_spec = KernelSpec(argv=KERNEL_ARGV[lang], display_name=lang, language=lang)
        launch = {"cwd": cwd, "env": self.kernel_env()}
        if self.run_as.uid is not None:
            launch.update(user=self.run_as.uid, group=self.run_as.gid, extra_groups=[])
        try:
            await km.start_kernel(**launch)
            kc = await self._client(km)
        except Exception:
            await self._kill(km)
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        ctx = Context(ctx_id, lang, cwd, km, kc, run_dir)
        self.by_id[ctx_id] = ctx
        log.info("context %s (%s) started in %s", ctx_id, lang, cwd)
        return ctx

    async def _client(self, km: AsyncKernelManager):
        kc = km.client()
        kc.start_channels()
        try:
            # Generous: on a loaded (or emulated) host a kernel's first start took over 60 s, and a
            # server that gives up exits, is restarted by onebox-init and starts over, never ready.
            await kc.wait_for_ready(timeout=KERNEL_READY_TIMEOUT_S)
        except Exception:
            kc.stop_channels()
            raise
        return kc

    async def _kill(self, km: AsyncKernelManager) -> None:
        try:
            await km.shutdown_kernel(now=True)
        except Exception as err:  # already dead or never started
            log.debug("shutdown: %s", err)

    async def default(self, language: Optional[str]) -> Context:
        """The default context of a language, created on first use (§4.4: python exists at start)."""
        lang = normalize_language(language)
        async with self._default_lock:
            ctx = self.by_id.get(self.default_for.get(lang, ""))
            if ctx is None:
                ctx = await self.create(lang, None)
                self.default_for[lang] = ctx.id
            return ctx

    def get(self, ctx_id: str) -> Optional[Context]:
        return self.by_id.get(ctx_id)

    def list(self) -> List[Dict[str, str]]:
        return [c.describe() for c in self.by_id.values()]

    async def restart(self, ctx: Context) -> None:
        """A fresh kernel with the same id, language and cwd; state is gone (§4.1)."""
        async with ctx.kernel_lock:
            await self._replace_kernel(ctx, "restarted")

    async def _replace_kernel(self, ctx: Context, why: str) -> None:
        ctx.generation += 1
        ctx.ended = why
        ctx.kc.stop_channels()
        await ctx.km.restart_kernel(now=True)
        # A new client's message counter starts again at 0; a new session id keeps msg_ids
        # unique, so nothing of the old kernel can be taken for a reply to a new request.
        ctx.km.session.session = uuid.uuid4().hex
        ctx.kc = await self._client(ctx.km)
        log.info("context %s: kernel %s", ctx.id, why)

    async def ensure_alive(self, ctx: Context) -> bool:
        """Restarts a dead kernel (caller holds ctx.kernel_lock); returns False if it was dead."""
        if await ctx.km.is_alive():
            return True
        log.warning("context %s: kernel died, restarting", ctx.id)
        await self._replace_kernel(ctx, "restarted because it died")
        return False

    async def remove(self, ctx: Context) -> None:
        self.by_id.pop(ctx.id, None)
        for lang, ctx_id in list(self.default_for.items()):
            if ctx_id == ctx.id:
                del self.default_for[lang]
        async with ctx.kernel_lock:
            ctx.generation += 1
            ctx.ended = "removed"
            ctx.removed = True
            ctx.kc.stop_channels()
            await self._kill(ctx.km)
        shutil.rmtree(ctx.run_dir, ignore_errors=True)

    async def close(self) -> None:
        for ctx in list(self.by_id.values()):
            await self.remove(ctx)
        shutil.rmtree(self.run_root, ignore_errors=True)
        if self.run_as.own_cwd:
            shutil.rmtree(self.run_as.default_cwd, ignore_errors=True)
