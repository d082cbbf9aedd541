"""`python -m nada_utils ...`: see nada_utils.cli."""

from .cli import main

raise SystemExit(main())
