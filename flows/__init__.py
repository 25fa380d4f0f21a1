"""Prefect flows and the command line.

Prefect reads its settings when it is first imported; these defaults make the embedded
(ephemeral) server work on small, offline machines. Anything the user sets wins.
"""

import os

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
