"""Examples that ship with the package (so ``tideflow quickstart`` works from a wheel).

- :mod:`tideflow.examples.ad_ctr`: the online click-through-rate loop of the quickstart.
"""
