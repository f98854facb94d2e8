"""A fuzz run: the budgeted loop (``loop``), what it is told (``options``), its budget, seeded
draws (``sampling``), coverage features and guidance (``features``, ``guide``), the live status
line and the final summary."""
