"""Rendering results: terminal tables, JSON artefacts."""
