"""A Jupyter kernel for javascript and typescript contexts: one persistent Node process (js_runtime.mjs) per kernel."""

# Debian has no JavaScript kernel package (ijavascript and tslab are npm-only), so this is a small
# wrapper on ipykernel's Kernel base class, in the shape of bash_kernel.py. Node runs our
# js_runtime.mjs; cells go to it as JSON lines on one pipe and each cell's outcome comes back on
# another, while the cell's stdout and stderr are Node's own stdout/stderr pipes, streamed as
# they arrive. `--typescript` makes the cells TypeScript (types stripped by esbuild in Node).

import codecs
import json
import os
import select
import subprocess
import sys
import time

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = os.environ.get("ONEBOX_INTERPRETER_NODE", "node")
MAX_EVENT_BYTES = 8 << 20  # an outcome line longer than this is a broken runtime (results are cut at 1 MiB)
INTERRUPT_GRACE_S = 3.0  # then the runtime is replaced (execution.py gives up on a cell after 10 s)
READ_CHUNK = 65536


class JsKernel(Kernel):
    implementation = "onebox-js"
    implementation_version = "1.0"
    language = "javascript"
    language_info = {"name": "javascript", "mimetype": "text/javascript", "file_extension": ".js"}
    banner = "onebox javascript kernel (a persistent Node process)"
    typescript = False
    runtime_name, runtime_program = "Node", "node"  # for the messages when the runtime is replaced

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._seq = 0
        # Why the last runtime was replaced, told on the next cell's stderr: the cell that
        # caused it was usually abandoned by its client (a timeout), so nobody saw its error.
        self._notice = ""
        self._start_node()

    # --- the Node process -------------------------------------------------------------
    def _start_node(self) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._evt_r, evt_w = os.pipe()
        # In the kernel's process group: jupyter_client interrupts with SIGINT to the whole group
        # (Node, and the user's child processes, get it as from Ctrl-C) and kills the group on
        # shutdown. Node resets the SIG_IGN that ipykernel leaves on SIGINT at its start.
        self._node = subprocess.Popen(
            self._runtime_argv(cmd_r, evt_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(cmd_r, evt_w), cwd=os.getcwd(), env=dict(os.environ))
        os.close(cmd_r)
        os.close(evt_w)
        os.set_blocking(self._cmd_w, False)
        self._decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace")
                          for fd in (self._node.stdout.fileno(), self._node.stderr.fileno())}
        self._names = {self._node.stdout.fileno(): "stdout", self._node.stderr.fileno(): "stderr"}

    def _runtime_argv(self, cmd_fd: int, evt_fd: int) -> list:
        return [NODE, os.path.join(HERE, "js_runtime.mjs"), str(cmd_fd), str(evt_fd)]

    def _encode_cell(self, seq: int, code: str, typescript: bool) -> bytes:
        return (json.dumps({"id": seq, "code": code, "typescript": typescript}) + "\n").encode()

    def _stop_node(self) -> None:
        try:
            self._node.kill()
        except OSError:
            pass
        self._node.wait()
        for fd in (self._cmd_w, self._evt_r):
            os.close(fd)
        self._node.stdout.close()
        self._node.stderr.close()

    def _restart_node(self) -> None:
        self._stop_node()
        self._start_node()

    def _read_output(self, fd: int, publish: bool) -> bool:
        """Publishes what one of Node's output pipes holds; False at its end."""
        data = os.read(fd, READ_CHUNK)
        if data and publish:
            text = self._decoders[fd].decode(data)
            if text:
                self.send_response(self.iopub_socket, "stream", {"name": self._names[fd], "text": text})
        return bool(data)

    def _drain_output(self, outputs: list, publish: bool) -> None:
        """What Node wrote before its outcome line is in the pipes already: read it all now."""
        for fd in list(outputs):
            while select.select([fd], [], [], 0)[0]:
                if not self._read_output(fd, publish):
                    break

    def _run(self, code: str, typescript: bool, publish: bool) -> dict:
        """Sends one cell and streams its output until its outcome (a dict) arrives."""
        self._seq += 1
        pending = self._encode_cell(self._seq, code, typescript)
        outputs = [self._node.stdout.fileno(), self._node.stderr.fileno()]
        events, deadline = b"", None
        while True:
            try:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                readable, writable, _ = select.select(outputs + [self._evt_r], [self._cmd_w] if pending else [], [], timeout)
                if writable:  # non-blocking: Node may be writing output we must keep reading
                    try:
                        pending = pending[os.write(self._cmd_w, pending[:READ_CHUNK]):]
                    except BlockingIOError:
                        pass
                for fd in readable:
                    if fd in outputs and not self._read_output(fd, publish):
                        outputs.remove(fd)
                if self._evt_r in readable:
                    data = os.read(self._evt_r, READ_CHUNK)
                    if not data:
                        return self._runtime_gone(outputs, publish)
                    events += data
                    while b"\n" in events:
                        line, events = events.split(b"\n", 1)
                        try:
                            outcome = json.loads(line)
                        except ValueError:
                            self._restart_node()
                            return self._lost("RuntimeError", "the runtime sent a malformed outcome")
                        if outcome.get("id") == self._seq:
                            self._drain_output(outputs, publish)
                            return outcome
                    if len(events) > MAX_EVENT_BYTES:
                        self._restart_node()
                        return self._lost("RuntimeError", "the runtime sent an outcome over 8 MiB")
                if deadline is not None and time.monotonic() >= deadline:
                    self._drain_output(outputs, publish)
                    self._restart_node()
                    return self._lost("KeyboardInterrupt", "the cell did not stop when interrupted")
            except KeyboardInterrupt:
                # jupyter_client's interrupt reached Node too (one process group): it ends the
                # cell with an error, unless the cell blocks its event loop after an await.
                deadline = time.monotonic() + INTERRUPT_GRACE_S

    def _runtime_gone(self, outputs: list, publish: bool) -> dict:
        """Node exited (`process.exit()` in a cell, or a crash): a fresh one for the next cell."""
        self._drain_output(outputs, publish)
        code = self._node.wait()
        self._restart_node()
        return self._lost("RuntimeExited", f"{self.runtime_program} exited with status {code}")

    def _lost(self, name: str, why: str) -> dict:
        value = f"{why}; a new {self.runtime_name} runtime was started (its state is lost)"
        self._notice = f"The previous cell's {value}.\n"
        return {"ok": False, "error": {"name": name, "value": value, "traceback": [f"{name}: {value}"]}}

    # --- the Jupyter side -------------------------------------------------------------
    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        reply = {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}
        if not code.strip():
            return reply
        if self._node.poll() is not None:
            self._restart_node()
        if self._notice and not silent:
            self.send_response(self.iopub_socket, "stream", {"name": "stderr", "text": self._notice})
            self._notice = ""
        # Silent executes are onebox's own bookkeeping (env vars, execution.py), plain JavaScript:
        # no esbuild run for them.
        outcome = self._run(code, self.typescript and not silent, publish=not silent)
        if outcome.get("ok"):
            if outcome.get("text") is not None and not silent:
                self.send_response(self.iopub_socket, "execute_result", {
                    "execution_count": self.execution_count, "data": {"text/plain": outcome["text"]}, "metadata": {}})
            return reply
        err = outcome.get("error") or {}
        content = {"ename": str(err.get("name", "Error")), "evalue": str(err.get("value", "")),
                   "traceback": [str(line) for line in err.get("traceback", [])]}
        if not silent:
            self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    def do_shutdown(self, restart):
        self._stop_node()
        return {"status": "ok", "restart": restart}


if __name__ == "__main__":
    if "--typescript" in sys.argv:  # ours, not a traitlets option: taken out before IPKernelApp parses
        sys.argv.remove("--typescript")
        JsKernel.typescript = True
        JsKernel.language = "typescript"
        JsKernel.language_info = {"name": "typescript", "mimetype": "text/typescript", "file_extension": ".ts"}
        JsKernel.banner = "onebox typescript kernel (a persistent Node process, types stripped by esbuild)"
    IPKernelApp.launch_instance(kernel_class=JsKernel)
