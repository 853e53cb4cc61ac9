"""The end-to-end tests over the session's shared store: the whole graph run for four days on the
emulator (``curated_store``), built once and only read (tests that change it copy it first).

The folder is the grouping: ``./dev test``'s parallel run keeps these modules in one process, so
the store is built once rather than once per process (the scheduler is in
``mspo_pipeline_tests/conftest.py``)."""
