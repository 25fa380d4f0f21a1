"""What the peers need to run here, changing none of their results.

datatrove 0.10.1 asks for the `fasttext-numpy2-wheel` distribution by name, while ours,
`fasttext-numpy2`, installs the same `fasttext` module (two copies would clash); it passes str
to xxhash, which the installed xxhash refuses (encoding first is the hash it means); and it
downloads lid.176 at run time, which cannot happen here (the same local model is used).
"""

from __future__ import annotations

import xxhash


def datatrove_here(lid_path: str | None = None) -> None:
    """Patch datatrove in this process: fastText found, xxhash given bytes, lid.176 local."""
    import datatrove.utils._import_utils as datatrove_imports
    import datatrove.utils.hashes.xxhash as datatrove_xxhash
    import datatrove.utils.lid as datatrove_lid

    is_available = datatrove_imports._is_distribution_available
    datatrove_imports._is_distribution_available = lambda name: (
        name == "fasttext-numpy2-wheel" or is_available(name)
    )
    datatrove_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(
        data.encode() if isinstance(data, str) else data
    )
    datatrove_xxhash.xxhash32 = lambda data: xxhash.xxh32_intdigest(
        data.encode() if isinstance(data, str) else data
    )
    if lid_path is not None:
        datatrove_lid.cached_asset_path_or_download = lambda *args, **kwargs: lid_path
