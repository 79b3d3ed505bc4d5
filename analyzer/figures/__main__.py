import sys

from analyzer.figures.cli import main

sys.exit(main())
