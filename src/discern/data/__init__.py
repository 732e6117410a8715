"""L1 data: the dataset registry (``discern data list | fetch | verify``) and corpus readers.

Nothing heavy is imported here; readers load files only when called.
"""

from .corpora import (BrownDoc, Chapter, Email, Novel, Speech, austen, brown, fashion_mnist,
                      moby_dick, sotu, spam_assassin, wikitext2_valid)
from .registry import (MANIFEST, REGISTRY, DatasetSpec, data_root, fetch, get, install_hint,
                       is_installed, list_datasets, local_copy, manifest, path, tree_sha256,
                       verify)

__all__ = [
    "MANIFEST", "REGISTRY", "BrownDoc", "Chapter", "DatasetSpec", "Email", "Novel", "Speech",
    "austen", "brown", "data_root", "fashion_mnist", "fetch", "get", "install_hint",
    "is_installed", "list_datasets", "local_copy", "manifest", "moby_dick", "path", "sotu", "spam_assassin",
    "tree_sha256", "verify", "wikitext2_valid",
]
