"""results stage of cognitive_action: what a user looks at after a run.

:mod:`.figures` draws a simulation in panels (neurons with their targets, weights,
multipliers, loss, constraint drift); :mod:`.labelled` turns trajectories, training
histories and verifier reports into labelled arrays (xarray Datasets with named
coordinates) saved to netCDF beside the ``.npz`` files.
"""
