"""``python -m fuzz report``: a run's sections and their data (``sections``), their figures
and pages (``figures``), the command (``command``), and the real-world JAX API coverage
(``api_coverage``)."""
