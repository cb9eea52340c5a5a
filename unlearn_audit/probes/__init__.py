"""Probes: checks beside the membership attacks for ways a forget set's influence can survive."""

from unlearn_audit.probes.similar import SimilarSampleProbe, probe_similar_samples

__all__ = ["SimilarSampleProbe", "probe_similar_samples"]
