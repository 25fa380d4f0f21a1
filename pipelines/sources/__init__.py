"""One reader per corpus format: a file in, Documents (or recorded rejections) out.

Every module of this package is imported here, so a reader registers itself (`register`,
`register_split` for readers in two phases, and `register_assembler` for formats with partial
records) by being in the package.
"""

import importlib
import pkgutil

from pipelines.sources.base import (
    ASSEMBLERS,
    READERS,
    SPLIT_READERS,
    Partial,
    Raw,
    Rejected,
    read_file,
    read_or_scan,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ASSEMBLERS",
    "READERS",
    "SPLIT_READERS",
    "Partial",
    "Raw",
    "Rejected",
    "read_file",
    "read_or_scan",
]
