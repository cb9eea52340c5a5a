"""unlearn-audit: does this model still remember the data it claims to have forgotten?

The package trains (and caches) reference models retrained without a forget set, attacks a target
model with per-example membership-inference attacks, and returns a statistically grounded verdict.
It also bundles unlearning methods so their outputs can be audited the same way.
"""

__version__ = "0.1.0"
