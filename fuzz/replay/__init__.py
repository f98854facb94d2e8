"""``python -m fuzz replay``: a corpus extracted again with the installed JAX (``command``) and
compared record by record (``diff``)."""
