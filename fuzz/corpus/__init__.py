"""The corpus: the crash-safe deduplicated store (``store``), the record schema (``schema``),
its readers (``records``), its statistics (``stats``) and ``python -m fuzz add`` (``add``)."""
