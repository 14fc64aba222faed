"""``python -m tideflow``: the same as the ``tideflow`` command."""

from tideflow.cli.main import main

main()
