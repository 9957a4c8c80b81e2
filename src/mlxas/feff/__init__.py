"""FEFF: engines, input cards, runs with timeouts, output checks and chunk files.

Success of a FEFF run is judged from its outputs and logs, never from its exit code:
FEFF exits 0 after fatal errors and only warns about several bad inputs.
"""
