"""Fresh random state for kernels that came out of a snapshot.

Every sandbox of a template is restored from one snapshot taken with the default Python context
already running (docs/snapshot.md), so without this every clone's `random` module (and numpy's
global generator, and bash's $RANDOM) would produce the same sequence. The host reseeds the guest
kernel's CRNG and writes the clone's id to /run/onebox/sandbox-id before anything else runs
(clone hygiene); a context reseeds its generators from that CRNG the first time it executes under
an id it has not seen.
"""

import os

SANDBOX_ID_FILE = os.environ.get("ONEBOX_SANDBOX_ID_FILE", "/run/onebox/sandbox-id")

_RESEED = {
    # random.seed() with no argument reads os.urandom; numpy only if the user's code imported it.
    "python": (
        "def _onebox_reseed():\n"
        "    import random, sys\n"
        "    random.seed()\n"
        "    np = sys.modules.get('numpy')\n"
        "    if np is not None:\n"
        "        np.random.seed()\n"
        "_onebox_reseed()\n"
        "del _onebox_reseed\n"
    ),
    # Assigning RANDOM seeds bash's generator.
    "bash": "RANDOM=$(od -An -N2 -tu2 /dev/urandom)\n",
}


def sandbox_identity() -> str:
    """The id clone hygiene wrote for this sandbox ("" outside a sandbox or before hygiene)."""
    try:
        with open(SANDBOX_ID_FILE, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def reseed_code(language: str) -> str:
    """Code (run silently) that reseeds a kernel of this language; "" when it has nothing to reseed."""
    return _RESEED.get(language, "")
