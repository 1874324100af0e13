import sys

from localgg.cli import main

sys.exit(main())
