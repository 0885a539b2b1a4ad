// Runs java cells for java_kernel.py: one JShell (JDK API), snippets executed in this JVM.

// Protocol (as js_runtime.mjs's): a cell comes on the command fd as a line "<id> <bytes>" and
// then that many bytes of UTF-8 code; its outcome goes back as one JSON line on the event fd:
// {"id", "ok", "text"} or {"id", "ok": false, "error": {name, value, traceback}}. The cell's own
// output is this process's stdout/stderr: snippets run in this JVM (not JShell's default remote
// JVM), so System.out is the pipe the kernel streams, and System.getenv is this process's env.

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.UnresolvedReferenceException;
import jdk.jshell.execution.DirectExecutionControl;
import jdk.jshell.spi.ExecutionControl;
import jdk.jshell.spi.ExecutionControlProvider;
import jdk.jshell.spi.ExecutionEnv;

final class JavaRuntime {
    // What the jshell tool imports at its start (its DEFAULT startup), so cells read as in jshell.
    static final String IMPORTS = "import java.io.*; import java.math.*; import java.net.*; import java.nio.file.*; "
        + "import java.util.*; import java.util.concurrent.*; import java.util.function.*; import java.util.prefs.*; "
        + "import java.util.regex.*; import java.util.stream.*;";

    /** Runs each snippet on a thread of its own, so that an interrupt stops the user's code only,
     *  never JShell's compiler; keeps the snippet's value as an object (a String shows unquoted). */
    static final class Control extends DirectExecutionControl {
        volatile Thread runner;
        volatile boolean stopped;
        Object value;

        @Override
        protected String invoke(Method doit) throws Exception {
            Object[] res = new Object[1];
            Throwable[] err = new Throwable[1];
            Thread t = new Thread(() -> {
                try {
                    res[0] = doit.invoke(null);
                } catch (Throwable e) {
                    err[0] = e;
                }
            }, "cell");
            t.setContextClassLoader(Thread.currentThread().getContextClassLoader());
            if (stopped) throw new ExecutionControl.StoppedException();
            runner = t;
            t.start();
            if (stopped) stop(); // an interrupt that came while the runner was being set
            while (true) {
                try {
                    t.join();
                    break;
                } catch (InterruptedException e) {
                    // not ours to act on: the runner is what gets stopped
                }
            }
            runner = null;
            Throwable e = err[0];
            Throwable cause = e instanceof InvocationTargetException ? e.getCause() : e;
            if (stopped && cause instanceof ThreadDeath) throw new ExecutionControl.StoppedException();
            if (e instanceof Exception) throw (Exception) e;
            if (e != null) throw new InvocationTargetException(e);
            value = res[0];
            return valueString(res[0]);
        }

        @Override
        @SuppressWarnings({"deprecation", "removal"})
        public void stop() {
            // Also while JShell compiles (no runner yet): the cell ends before its next snippet.
            stopped = true;
            Thread t = runner;
            if (t != null) t.stop(); // JDK 17: still works (the jshell tool's local engine does the same)
        }
    }

    final Control control = new Control();
    final JShell shell;

    JavaRuntime() {
        ExecutionControlProvider provider = new ExecutionControlProvider() {
            @Override public String name() { return "onebox"; }
            @Override public ExecutionControl generate(ExecutionEnv env, Map<String, String> params) { return control; }
        };
        shell = JShell.builder().executionEngine(provider, Map.of()).build();
    }

    /** The outcome of one cell as a JSON line. */
    String run(String code) {
        control.stopped = false;
        SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
        String remaining = code;
        String text = null;
        while (!remaining.isBlank()) {
            if (control.stopped) return interrupted();
            SourceCodeAnalysis.CompletionInfo info = sca.analyzeCompletion(remaining);
            if (info.completeness() == SourceCodeAnalysis.Completeness.EMPTY) break;
            if (!info.completeness().isComplete()) {
                String rest = remaining.strip();
                return error("CompilationException", "incomplete code: " + firstLine(rest), List.of(rest));
            }
            String source = info.source();
            remaining = info.remaining();
            control.value = null;
            text = null;
            for (SnippetEvent ev : shell.eval(source)) {
                if (ev.causeSnippet() != null) continue; // an update of a dependent snippet
                if (control.stopped) return interrupted();
                Snippet sn = ev.snippet();
                if (ev.status() == Snippet.Status.REJECTED) return compileError(sn);
                if (ev.exception() != null) return runtimeError(ev.exception());
                if (shows(sn) && ev.value() != null) {
                    Object v = control.value;
                    text = (v instanceof String || v instanceof Character) ? String.valueOf(v) : ev.value();
                }
            }
        }
        return text == null ? "{\"ok\":true}" : "{\"ok\":true,\"text\":" + json(text) + "}";
    }

    static String interrupted() {
        return error("InterruptedException", "the cell was interrupted", List.of("java.lang.InterruptedException: the cell was interrupted"));
    }

    /** An expression's value is the cell's result; a declaration's (int x = 1) is not, as in IJava. */
    static boolean shows(Snippet sn) {
        switch (sn.subKind()) {
            case TEMP_VAR_EXPRESSION_SUBKIND: case VAR_VALUE_SUBKIND: case ASSIGNMENT_SUBKIND: case OTHER_EXPRESSION_SUBKIND:
                return true;
            default:
                return false;
        }
    }

    String compileError(Snippet sn) {
        List<String> lines = new ArrayList<>();
        List<Diag> diags = shell.diagnostics(sn).filter(Diag::isError).collect(Collectors.toList());
        String src = sn.source();
        for (Diag d : diags) {
            lines.add(d.getMessage(Locale.ROOT));
            int start = (int) Math.max(0, d.getStartPosition());
            int lineStart = src.lastIndexOf('\n', Math.max(0, start - 1)) + 1;
            int lineEnd = src.indexOf('\n', start);
            if (lineEnd < 0) lineEnd = src.length();
            if (lineStart <= lineEnd) {
                lines.add(src.substring(lineStart, lineEnd));
                int end = (int) Math.min(Math.max(d.getEndPosition(), start + 1), lineEnd);
                lines.add(" ".repeat(Math.max(0, start - lineStart)) + "^".repeat(Math.max(1, end - start)));
            }
        }
        String value = diags.isEmpty() ? "the snippet was rejected: " + firstLine(src) : diags.get(0).getMessage(Locale.ROOT);
        if (lines.isEmpty()) lines.add(value);
        return error("CompilationException", value, lines);
    }

    static String runtimeError(JShellException ex) {
        String name;
        String value = ex.getMessage() == null ? "" : ex.getMessage();
        if (ex instanceof EvalException) {
            name = ((EvalException) ex).getExceptionClassName();
        } else if (ex instanceof UnresolvedReferenceException) {
            name = "UnresolvedReferenceException";
            Snippet s = ((UnresolvedReferenceException) ex).getSnippet();
            value = "attempted to use " + firstLine(s.source()) + ", which cannot be invoked until its unresolved references are declared";
        } else {
            name = ex.getClass().getName();
        }
        List<String> tb = new ArrayList<>();
        tb.add(value.isEmpty() ? name : name + ": " + value);
        for (StackTraceElement f : ex.getStackTrace()) {
            // JShell blanks a snippet's class name (its wrapper class); the line is the snippet's.
            String cls = f.getClassName().isEmpty() || f.getClassName().startsWith("REPL.") ? "" : f.getClassName() + ".";
            tb.add("\tat " + cls + f.getMethodName() + "(" + (f.getFileName() == null ? "" : f.getFileName() + ":") + f.getLineNumber() + ")");
        }
        return error(name, value, tb);
    }

    static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl) + " ...";
    }

    static String error(String name, String value, List<String> traceback) {
        return "{\"ok\":false,\"error\":{\"name\":" + json(name) + ",\"value\":" + json(value) + ",\"traceback\":["
            + traceback.stream().map(JavaRuntime::json).collect(Collectors.joining(",")) + "]}}";
    }

    static String json(String s) {
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20 || (c >= 0xd800 && c <= 0xdfff && !validSurrogate(s, i))) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }

    static boolean validSurrogate(String s, int i) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c)) return i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1));
        return i > 0 && Character.isHighSurrogate(s.charAt(i - 1));
    }

    static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int b;
        while ((b = in.read()) != '\n') {
            if (b < 0) return null;
            buf.write(b);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        DataInputStream cmds = new DataInputStream(new BufferedInputStream(new FileInputStream("/proc/self/fd/" + args[0])));
        OutputStream events = new FileOutputStream("/proc/self/fd/" + args[1]);
        JavaRuntime rt = new JavaRuntime();
        // jupyter_client interrupts the kernel's process group with SIGINT: it stops the running snippet.
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), sig -> rt.control.stop());
        rt.run(IMPORTS);
        for (String header; (header = readLine(cmds)) != null; ) {
            String[] parts = header.split(" ");
            byte[] code = new byte[Integer.parseInt(parts[1])];
            cmds.readFully(code);
            String outcome;
            try {
                outcome = rt.run(new String(code, StandardCharsets.UTF_8));
            } catch (RuntimeException | Error e) { // a broken JShell state: said, the runtime goes on
                outcome = error(e.getClass().getName(), String.valueOf(e.getMessage()), List.of(e.toString()));
            }
            System.out.flush();
            System.err.flush();
            events.write(("{\"id\":" + Long.parseLong(parts[0]) + "," + outcome.substring(1) + "\n").getBytes(StandardCharsets.UTF_8));
            events.flush();
        }
    }
}
