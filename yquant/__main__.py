import sys

from yquant.cli import main

sys.exit(main())
