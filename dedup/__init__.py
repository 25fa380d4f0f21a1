"""Deduplication: exact, line-level and MinHash-LSH; pure functions plus Beam PTransforms."""
