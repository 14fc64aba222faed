"""Online click-through-rate prediction -- workflow ``ad_ctr``, the flagship of the quickstart.

The code ships inside the package (``src/tideflow/examples/ad_ctr/``: ``market.py`` the seeded
ad market and its known click model, ``model.py`` the online model, ``jobs.py`` the processors,
``workflow.py`` the declaration) so ``tideflow quickstart`` works from an installed wheel. This
file only re-exports the workflow, so both commands run the same thing:

    tideflow run examples/ad_ctr/workflow.py --param duration=20 --timeout 120
    tideflow quickstart --duration 60
"""

from tideflow.examples.ad_ctr.workflow import wf

__all__ = ["wf"]
