"""`python -m bot` is `rollback-bot`."""

import sys

from bot.cli import main

sys.exit(main())
