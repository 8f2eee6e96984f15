"""`python -m cli`: the `reactor` command."""

from cli import main

main()
