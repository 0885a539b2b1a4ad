"""A Jupyter kernel for java contexts: one persistent JVM running JShell (java_runtime.java) per kernel."""

# E2B's template runs the IJava kernel, which Debian does not package; Debian's JDK has JShell,
# the JDK's own REPL engine, as an API. So this is js_kernel.py's wrapper with a JVM in place of
# Node: cells go to java_runtime.java on a pipe (a "<id> <bytes>" line, then the code), outcomes
# come back as JSON lines on another, the cell's output is the JVM's own stdout/stderr.

import os
import sys

from ipykernel.kernelapp import IPKernelApp

from js_kernel import HERE, JsKernel

JAVA = os.environ.get("ONEBOX_INTERPRETER_JAVA", "java")
JAVA_OPTIONS = [
    # Cells set env vars by writing into System.getenv()'s map (execution.py's env_code).
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    # One GC thread set instead of G1's: a sandbox has a core or two, and a JVM per context.
    "-XX:+UseSerialGC",
    # No /tmp/hsperfdata_<user> dir: onebox's internals stay out of the user's /tmp (jps/jstat lose it).
    "-XX:-UsePerfData",
]


class JavaKernel(JsKernel):
    implementation = "onebox-java"
    language = "java"
    language_info = {"name": "java", "mimetype": "text/x-java-source", "file_extension": ".jshell"}
    banner = "onebox java kernel (JShell in a persistent JVM)"
    runtime_name, runtime_program = "JVM", "java"

    def _runtime_argv(self, cmd_fd: int, evt_fd: int) -> list:
        # `env --default-signal=INT`: ipykernel ignores SIGINT outside a cell and a JVM started
        # with SIGINT ignored can never handle it; java_runtime.java's handler stops the cell.
        # The runtime is one source file the JDK compiles at start (no build step in the image).
        return ["env", "--default-signal=INT", JAVA, *JAVA_OPTIONS,
                os.path.join(HERE, "java_runtime.java"), str(cmd_fd), str(evt_fd)]

    def _encode_cell(self, seq: int, code: str, typescript: bool) -> bytes:
        data = code.encode("utf-8", "surrogatepass")
        return f"{seq} {len(data)}\n".encode() + data


if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=JavaKernel)
