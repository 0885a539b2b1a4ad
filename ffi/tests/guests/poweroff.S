// Test guest: powers off at once through the onebox power-off port.
#include "guest.h"
.code64
  POWEROFF
