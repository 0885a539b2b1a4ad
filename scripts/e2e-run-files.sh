#!/usr/bin/env bash
# Runs inside the test host (scripts/test-e2e.sh starts it): one `bun test` per e2e file, in order,
# each under its own deadline. bun's per-test timeouts cannot fire when bun itself is stuck or the
# test host stalls, and one stuck file must not eat the whole CI budget: at the deadline this dumps
# what every process is doing (for the hang to be diagnosable from the CI log), then kills the file's
# bun and reruns it once (see below). Exit status: 1 if any file failed or hit its deadline twice.
set -uo pipefail
FILE_TIMEOUT=${ONEBOX_E2E_FILE_TIMEOUT:-1200}

# dump_state: processes with their kernel wait points and the stacks of every bun and vmm thread.
dump_state() {
  echo "=== e2e-run-files: state at the deadline ($(cut -d' ' -f1 /proc/uptime) s up, load $(cut -d' ' -f1-3 /proc/loadavg)) ==="
  ps -eo pid,ppid,stat,wchan:24,etimes,pcpu,rss,args --sort=pid | grep -v ' \[' | cut -c1-220
  free -m
  local p t
  for p in $(pgrep -f 'onebox-vmm|bun test'); do
    echo "--- pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-160)"
    for t in /proc/"$p"/task/*; do
      echo "  tid ${t##*/} $(cat "$t/comm" 2>/dev/null) state=$(awk '/^State/ {print $2}' "$t/status" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)"
      sed 's/^/      /' "$t/stack" 2>/dev/null | head -12
    done
  done
  echo "--- vmm stderr/console tails under /tmp"
  find /tmp -maxdepth 4 \( -name 'console.log' -o -name 'vmm.stderr' -o -name 'stderr.log' \) -newer /proc/1/cmdline 2>/dev/null \
    | head -8 | while read -r f; do echo ">> $f"; tail -c 600 "$f"; echo; done
  dmesg | tail -n 15
  echo "=== end of state ==="
}

# maybe_crash F PID: for the check of scripts/test-e2e.sh's handling of a test host that dies
# (docs/testhost.md): with ONEBOX_E2E_CRASH=F, while F runs in one of the first
# ONEBOX_E2E_CRASH_ATTEMPTS (default 1) test hosts, crash this kernel (sysrq 'c': a panic, and the
# test host ends) ONEBOX_E2E_CRASH_AFTER s (default 20) after F's bun started. Unset: nothing.
# ONEBOX_E2E_CRASH_HOW=reset resets the machine instead (sysrq 'b': no panic on the console, as when
# the test host itself triple-faulted in a CI-shaped run).
maybe_crash() {
  [ -n "${ONEBOX_E2E_CRASH:-}" ] && [ "$1" = "$ONEBOX_E2E_CRASH" ] \
    && [ "${ONEBOX_E2E_ATTEMPT:-1}" -le "${ONEBOX_E2E_CRASH_ATTEMPTS:-1}" ] || return 0
  local t=0
  while kill -0 "$2" 2>/dev/null && ((t < ${ONEBOX_E2E_CRASH_AFTER:-20})); do sleep 1; t=$((t + 1)); done
  echo "e2e-run-files: ONEBOX_E2E_CRASH: crashing the test host's kernel during $1 (attempt ${ONEBOX_E2E_ATTEMPT:-1})"
  sync
  if [ "${ONEBOX_E2E_CRASH_HOW:-panic}" = reset ]; then echo b >/proc/sysrq-trigger; else echo c >/proc/sysrq-trigger; fi
  sleep 60 # not reached: the kernel panics and the test host ends
}

# run_file F: 0 passed, 1 failed, 2 hit its deadline (killed after the state dump).
run_file() {
  local start=$SECONDS pid
  bun test --timeout 600000 "$1" &
  pid=$!
  maybe_crash "$1" "$pid"
  while kill -0 "$pid" 2>/dev/null && ((SECONDS - start < FILE_TIMEOUT)); do sleep 2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "e2e-run-files: $1 still running after ${FILE_TIMEOUT} s; killing it"
    dump_state
    pkill -TERM -P "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null
    sleep 5
    pkill -KILL -P "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null
    pkill -KILL -f onebox-vmm 2>/dev/null # the stuck file's VMs; the next run starts from none
    wait "$pid" 2>/dev/null
    return 2
  fi
  wait "$pid" || return 1
}

# A file that hits its deadline runs once more, from a clean slate: an undiagnosed stall of the
# emulated host (once in several full runs, in a different file each time, with no output at all)
# must not fail CI by itself. The stall's state dump stays in the log; a file that stalls twice, or
# fails, fails the run.
# Counting (scripts/test-e2e.sh): a file's result is bun's " N pass" / " N fail" lines after its
# last "e2e-run-files: start F" marker, taken at "e2e-run-files: done F"; a killed attempt's partial
# output is thereby dropped, and "deadline twice" counts as one failure. Everything goes to one
# stream (stderr, as bun's summary does) so that markers and summaries stay in order.
exec 1>&2
rc=0
for f in "$@"; do
  echo "e2e-run-files: start $f"
  run_file "$f"; r=$?
  if [ $r -eq 2 ]; then
    echo "e2e-run-files: RERUN $f after its deadline (state dump above)"
    echo "e2e-run-files: start $f"
    run_file "$f"; r=$?
  fi
  [ $r -eq 2 ] && echo "e2e-run-files: deadline twice $f (counted as 1 failure)"
  [ $r -eq 0 ] || rc=1
  echo "e2e-run-files: done $f" # scripts/test-e2e.sh reruns the files after the last one of these if the test host dies or stalls
done
exit $rc
