"""Evaluation methods over a survey's answers: fuzzy, grey relational, PCA, ACSI (PLS-PM).

* :mod:`.fuzzy`, :mod:`.grey`, :mod:`.pca`, :mod:`.pls` and :mod:`.acsi`: the pure
  numeric methods, on numpy arrays (no database);
* :mod:`.data`: the answer matrices loaded from the database (SQL aggregation);
* :mod:`.service`: ``evaluate(crm, survey_key, method, **options)``, the
  ``@requires``-declared service function, returning the typed results of
  :mod:`.results` (``to_dict()``); :mod:`.run_fuzzy`, :mod:`.run_scores` (grey, PCA)
  and :mod:`.run_acsi` join the loading and the arithmetic for each method;
* :mod:`.acsi_template`: the ``acsi`` survey template (the standard ACSI question set).

This package imports nothing at import time, so that ``templates.py`` can take the
ACSI template from it without loading numpy. Every formula is written out in
``docs/plugins/surveys-evaluation.md``.
"""
