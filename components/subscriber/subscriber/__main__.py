import sys

from subscriber.app import main

sys.exit(main())
