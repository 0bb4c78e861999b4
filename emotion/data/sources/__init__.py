"""Where the faces and their labels come from: FER2013 in each form it circulates in
(:mod:`~emotion.data.sources.fer2013`), the FER+ crowd votes joined to those faces
(:mod:`~emotion.data.sources.ferplus`), and the one decoded uint8 cache every run reads them from
(:mod:`~emotion.data.sources.cache`). No torch, no Lightning: the datamodule builds on these.
"""

from emotion.data.sources.cache import default_cache_dir, load_or_build
from emotion.data.sources.fer2013 import (
    MISSING_DATA_HELP,
    RawFER,
    is_test_set_folder,
    locate_source,
    read_source,
    source_fingerprint,
)

__all__ = ["RawFER", "locate_source", "read_source", "source_fingerprint", "is_test_set_folder",
           "MISSING_DATA_HELP", "load_or_build", "default_cache_dir"]
