"""Reading a sweep's runs (runs.py) and writing its comparison report (report.py, `python compare.py`)."""
