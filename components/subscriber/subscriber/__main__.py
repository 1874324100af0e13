"""The image's entry point: the component (no argument), or `check`, its Install step's self-check
(subscriber.check)."""

import sys

if sys.argv[1:] == ["check"]:
    from subscriber.check import main
else:
    from subscriber.app import main

sys.exit(main())
