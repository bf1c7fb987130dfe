import sys

from astreinte_ari.cli import main

sys.exit(main())
