"""Language identification and quality filters: pure functions over text, plus thin Beam DoFns."""
