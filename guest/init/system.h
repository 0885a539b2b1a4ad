// Guest identity and basics set by PID 1: hostname, loopback, the sandbox user.
#pragma once

/* system_set_hostname sets the hostname (and /etc/hostname is left to the image). */
void system_set_hostname(const char *name);
/* system_lo_up brings up the loopback interface (SIOCSIFFLAGS). */
int system_lo_up(void);
/* system_check_user logs whether user `user` (uid 1000, home /home/user) exists. */
void system_check_user(void);
/* system_write_id writes the sandbox id to /run/onebox/sandbox-id. */
void system_write_id(const char *id);
