"""`python -m convnet ...` (and `torchrun -m convnet ...`) run the `convnet` command."""

import sys

from convnet.cli import main

sys.exit(main())
