"""A Jupyter kernel for bash contexts: one persistent interactive bash on a pty, cells ended by a sentinel prompt."""

# Debian bookworm has no bash_kernel package (checked with apt-cache policy python3-bash-kernel),
# so bash contexts use this small wrapper kernel on ipykernel's Kernel base class. Protocol:
# bash runs interactively (job control, so Ctrl-C aborts a cell like in a terminal) with
# PS1 = <token><exit status><token>E; a cell is written to a file and `source`d with stdin
# from /dev/null and stderr on a separate pipe; output up to the next prompt belongs to the cell.

import codecs
import os
import re
import secrets
import select
import signal
import tempfile

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel
from ptyprocess import PtyProcess


class BashKernel(Kernel):
    implementation = "onebox-bash"
    implementation_version = "1.0"
    language = "bash"
    language_info = {"name": "bash", "codemirror_mode": "shell", "mimetype": "text/x-sh", "file_extension": ".sh"}
    banner = "onebox bash kernel (persistent bash with a sentinel prompt)"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Cells go next to the connection file: a private directory the server removes with
        # the context (a kernel killed with SIGKILL cannot clean up after itself).
        connection_file = IPKernelApp.instance().connection_file
        self._dir = os.path.dirname(os.path.abspath(connection_file)) if connection_file else tempfile.mkdtemp()
        self._start_bash()

    # --- the bash process -------------------------------------------------------------
    def _start_bash(self) -> None:
        self._token = "__onebox_" + secrets.token_hex(8)
        self._prompt = re.compile(re.escape(self._token) + r"(\d+)" + re.escape(self._token) + "E")
        err_r, err_w = os.pipe()
        os.set_blocking(err_r, False)
        os.set_inheritable(err_w, True)  # ptyprocess keeps pass_fds open but exec honours CLOEXEC
        # ipykernel ignores SIGINT; an ignored signal is inherited, and then Ctrl-C could not
        # stop the user's commands. Spawn with the default disposition.
        previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            self._bash = PtyProcess.spawn(["bash", "--norc", "--noprofile", "--noediting", "-i"],
                                          env=dict(os.environ), cwd=os.getcwd(), echo=False,
                                          dimensions=(50, 200), pass_fds=(err_w,))
        finally:
            signal.signal(signal.SIGINT, previous)
        os.close(err_w)
        self._err_r, self._err_w = err_r, err_w  # err_w: the fd number as bash sees it
        self._out_dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._err_dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._bash.write((f"PS1='{self._token}$?{self._token}E'; PS2=''; unset PROMPT_COMMAND; "
                          "export PAGER=cat TERM=dumb\n").encode())
        self._run_until_prompt(publish=False)

    def _stop_bash(self) -> None:
        try:
            self._bash.terminate(force=True)
        except Exception:
            pass
        os.close(self._err_r)

    def _publish(self, name: str, text: str) -> None:
        if text:
            self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def _drain_stderr(self, publish: bool) -> None:
        while True:
            try:
                data = os.read(self._err_r, 65536)
            except BlockingIOError:
                return
            if not data:
                return
            if publish:
                self._publish("stderr", self._err_dec.decode(data))

    def _held_back(self, buf: str) -> int:
        """Where the part of `buf` that may be the start of the prompt begins."""
        idx = buf.find(self._token)
        if idx >= 0:
            return idx
        for k in range(min(len(buf), len(self._token)), 0, -1):
            if self._token.startswith(buf[-k:]):
                return len(buf) - k
        return len(buf)

    def _run_until_prompt(self, publish: bool):
        """Streams output until the sentinel prompt; returns (exit status or None if bash exited, interrupted)."""
        buf, interrupted = "", False
        while True:
            try:
                ready, _, _ = select.select([self._bash.fd, self._err_r], [], [])
                if self._err_r in ready:
                    self._drain_stderr(publish)
                if self._bash.fd not in ready:
                    continue
                try:
                    data = os.read(self._bash.fd, 65536)
                except OSError:  # EIO: bash exited and the pty closed
                    data = b""
                if not data:
                    if publish:
                        self._publish("stdout", buf)
                    return None, interrupted
                buf += self._out_dec.decode(data).replace("\r\n", "\n")
                match = self._prompt.search(buf)
                if match:
                    self._drain_stderr(publish)
                    if publish:
                        self._publish("stdout", buf[:match.start()])
                    return int(match.group(1)), interrupted
                cut = self._held_back(buf)
                if publish:
                    self._publish("stdout", buf[:cut])
                buf = buf[cut:]
            except KeyboardInterrupt:
                # jupyter_client interrupts the kernel with SIGINT: pass it on as Ctrl-C on the
                # pty, which signals the foreground job; bash then prints its prompt.
                interrupted = True
                self._bash.sendintr()

    # --- the Jupyter side -------------------------------------------------------------
    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        ok = {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}
        if not code.strip():
            return ok
        if not self._bash.isalive():
            self._stop_bash()
            self._start_bash()
        cell = os.path.join(self._dir, "cell.sh")
        with open(cell, "w") as f:
            f.write(code if code.endswith("\n") else code + "\n")
        self._bash.write(f"source {cell} </dev/null 2>&{self._err_w}\n".encode())
        status, interrupted = self._run_until_prompt(publish=not silent)
        if status is None:  # `exit` in a cell: a fresh bash for the next one
            self._stop_bash()
            self._start_bash()
            return self._error("BashExited", "bash exited; a new bash was started (its state is lost)", silent)
        if interrupted:
            return self._error("KeyboardInterrupt", "interrupted", silent)
        if status != 0:
            return self._error("ExitCode", str(status), silent)
        return ok

    def _error(self, name: str, value: str, silent: bool):
        content = {"ename": name, "evalue": value, "traceback": [f"{name}: {value}"]}
        if not silent:
            self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    def do_shutdown(self, restart):
        self._stop_bash()
        return {"status": "ok", "restart": restart}


if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=BashKernel)
