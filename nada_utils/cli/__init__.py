"""`python -m nada_utils ...`: the command-line interface, one module per group of commands.

May import: anything in nada_utils but notebook
"""

from nada_utils.cli.main import main

__all__ = ["main"]
