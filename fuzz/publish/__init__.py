"""``python -m fuzz export``: a corpus published as a Parquet dataset (``export``), its
near-deduplication (``near_dedup``) and its dataset card (``dataset_card``)."""
