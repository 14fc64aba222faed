"""The flagship example: online click-through-rate prediction (workflow ``ad_ctr``).

- :mod:`~tideflow.examples.ad_ctr.market`: the seeded ad market (categorical user / ad /
  context features, a known click model, a concept drift at a known time) and AUC / log loss.
- :mod:`~tideflow.examples.ad_ctr.model`: the CTR model (a sparse logistic regression over
  feature tokens learnt online by SGD, in pure Python), a plain callable the predictor scores
  with.
- :mod:`~tideflow.examples.ad_ctr.jobs`: the processors (generate, train, validate, push).
- :mod:`~tideflow.examples.ad_ctr.workflow`: the workflow declaration.

See examples/ad_ctr/README.md and docs/quickstart.md.
"""

WORKFLOW_FILE = __file__.replace("__init__.py", "workflow.py")
"""The file that declares the workflow (what ``tideflow run`` and the quickstart submit)."""
