import sys

from hip3.cli import main

sys.exit(main())
