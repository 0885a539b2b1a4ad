// Power-off and reboot of the guest (no ACPI: tell the vmm through ONEBOX_PORT_POWEROFF).
#pragma once

/* power_off syncs, writes the power-off port, then reboot(RB_POWER_OFF); never returns. */
void power_off(void) __attribute__((noreturn));
/* power_reboot syncs and reboots (the i8042 reset the vmm sees); never returns. */
void power_reboot(void) __attribute__((noreturn));
