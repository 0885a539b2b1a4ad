// Supervision by PID 1: the agent and extra services, started, restarted with backoff, reaped.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SERVICES_MAX 16
#define AGENT_CONF "/etc/onebox/agent.conf"
#define SERVICES_DIR "/etc/onebox/services.d"

/* A service is either a program from a .conf file or an in-process function run in a forked
 * child (the forwarder and the control channel). */
struct service {
  char name[32];
  char conf_path[128];      /* "" for in-process services */
  void (*fn)(void);         /* in-process body, run in the child; must not return */
  pid_t pid;                /* 0 when not running */
  uint64_t started_ms;
  uint64_t restart_at_ms;   /* when to (re)start, 0 = now */
  unsigned failures;        /* consecutive short-lived runs, drives the backoff */
  bool missing_logged;
};

/* services_now_ms is CLOCK_MONOTONIC in ms. */
uint64_t services_now_ms(void);
/* services_add_conf / services_add_fn register a service; they return it or NULL when full. */
struct service *services_add_conf(const char *name, const char *conf_path);
struct service *services_add_fn(const char *name, void (*fn)(void));
/* services_scan_dir registers every SERVICES_DIR/<name>.conf. */
void services_scan_dir(void);
/* services_tick starts what is due; returns ms until the next due start (or -1 if none). */
long services_tick(void);
/* services_reaped records the exit of pid (any child: orphans are just reaped) and schedules
 * a restart with backoff when it was a service. */
void services_reaped(pid_t pid, int status);
/* services_stop_all sends SIGTERM to all services, waits up to ms, then SIGKILLs the rest. */
void services_stop_all(int ms);
/* services_running tells whether the named service currently has a process. */
bool services_running(const char *name);
