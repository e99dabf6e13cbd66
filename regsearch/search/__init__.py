"""Optuna search: the space of a sweep (space.py) and the ask → train → tell loop (study.py)."""
