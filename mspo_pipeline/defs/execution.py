"""How runs execute: in one process by default.

On a small machine Dagster's multiprocess executor spends most of a run starting a Python process
per step (~3.5 s each, measured on a 2-core machine) while the steps themselves are I/O or
vectorised polars.
Deployments that scale out pick their executor in run config.
"""

import dagster as dg

defs = dg.Definitions(executor=dg.in_process_executor)
