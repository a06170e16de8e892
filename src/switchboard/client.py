"""The Python client moved to its own distribution, `switchboard-live-client`, imported as
`switchboard_client`; this name keeps old imports working (docs/python-client.md)."""

from switchboard_client import *  # noqa: F403
from switchboard_client import __all__ as __all__
