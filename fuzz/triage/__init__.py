"""From a failure to a report: Hypothesis' shrink and tree reduction (``minimize``,
``reduce``), a failure folder's files (``folder``), the reproducers (``oracle_repro``,
``short_repro``), the culprit pass (``culprit``), the registry of known findings
(``known_findings``), ``REPORT.md`` (``report_md``) and ``python -m fuzz triage``
(``command``, going on with pending reductions in ``resume``)."""
