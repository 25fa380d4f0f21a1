"""Data pipeline: recipe, Document schema, stage store, source readers, one Beam job per stage."""

__version__ = "0.1.0"
