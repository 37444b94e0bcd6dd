"""`python -m codex_trio.sim [--host --port --https --accounts N --plans free,pro --scenario FILE]`."""

import sys

from .cli import main

sys.exit(main())
