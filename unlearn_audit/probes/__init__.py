"""Probes: checks beside the membership attacks for ways a forget set's influence can survive.

Names imported on first use (:mod:`unlearn_audit._lazy`).
"""

from unlearn_audit._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "similar": ("SimilarSampleProbe", "probe_similar_samples"),
})
