"""`python -m ocrsr_lib` runs the `ocrsr` command line."""

import sys

from ocrsr_lib.cli import main

sys.exit(main())
