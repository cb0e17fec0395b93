"""`trickrun lesson`: the experiment behind each claim of the lesson, and a report of verdicts.

claims.py declares the claims and their comparisons, runner.py runs their sweeps, verdicts.py
applies the statistical rule, figures.py and report.py write lesson.md and its figures.
"""
