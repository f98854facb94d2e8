"""jaxsmith's fuzzer: ``python -m fuzz`` and its subcommands, in sub-packages by job.

- ``fuzz.campaign``: a run — the budgeted loop, guidance, sampling, budget, status, summary;
- ``fuzz.triage``: from a failure to a report — reduction, culprit, reproducers, registry;
- ``fuzz.corpus``: the corpus — store, record schema, readers, stats, hand-written programs;
- ``fuzz.replay``: replaying a corpus on another JAX and comparing;
- ``fuzz.publish``: exporting a corpus as a Parquet dataset with its card;
- ``fuzz.report``: the run's HTML report and the real-world API coverage.

``fuzz.cli`` parses the command line and hands each subcommand to its package;
``fuzz.argtypes`` holds the argument types they share.
"""
