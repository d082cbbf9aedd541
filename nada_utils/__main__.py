"""`python -m nada_utils ...`: see nada_utils.cli."""

from nada_utils.cli import main

raise SystemExit(main())
