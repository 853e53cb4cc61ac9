"""An emulation of the MSPO API for demos, tests and benchmarks.

``references`` holds the reference tables, ``generator`` the smallholder registers and their
day-by-day evolution, ``faults`` what can go wrong on request, ``server`` the HTTP server.
"""
