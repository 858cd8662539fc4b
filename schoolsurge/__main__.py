import sys

from schoolsurge.cli import main

sys.exit(main())
