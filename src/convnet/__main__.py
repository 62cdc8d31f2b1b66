"""`python -m convnet ...` (and `torchrun -m convnet ...`) run the `convnet` command."""

from convnet.cli.process import run

run()
