"""Examples that ship with the package (so ``tideflow quickstart`` works from a wheel).

- :mod:`tideflow.examples.ad_ctr`: the online click-through-rate loop of the quickstart.
- :mod:`tideflow.examples.digits`: the processors of the four digits examples
  (``examples/*_train_*_predict/``).
"""
