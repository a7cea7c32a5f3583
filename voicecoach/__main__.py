"""`python -m voicecoach`."""

import sys

from voicecoach.cli.main import main

sys.exit(main())
