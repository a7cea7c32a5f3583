"""`python -m voicecoach`."""

import sys

from voicecoach.cli import main

sys.exit(main())
