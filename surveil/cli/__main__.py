"""`python -m surveil.cli`."""

from surveil.cli import main

main()
