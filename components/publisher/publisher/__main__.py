import sys

from publisher.app import main

sys.exit(main())
