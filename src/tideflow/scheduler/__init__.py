"""The scheduler: rules over events -> job actions, exactly once (pure core + dispatcher)."""
