"""`python -m convnet ...` (and `torchrun -m convnet ...`) run the `convnet` command."""

from convnet.cli import run

run()
