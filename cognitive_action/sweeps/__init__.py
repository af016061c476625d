"""Parameter sweeps on Dask: a spec, a resumable store, a convergence summary.

``pip install "cognitive_action[sweeps]"`` brings dask.distributed, xarray and zarr (the
spec itself needs none of them). See docs/sweeps.md.

>>> from cognitive_action import sweeps
>>> sorted(n for n in sweeps.__all__ if n[0].isupper())
['Convergence', 'SweepFile', 'SweepSpec', 'TaskContext']
"""

from typing import TYPE_CHECKING

from cognitive_action.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from cognitive_action.sweeps.engine import load_sweep, run_point, run_sweep
    from cognitive_action.sweeps.section import SweepFile, load_sweep_file
    from cognitive_action.sweeps.spec import (
        Convergence,
        SweepSpec,
        TaskContext,
        register_task,
        registered_tasks,
    )
    from cognitive_action.sweeps.summary import convergence_summary, fit_order, plot_convergence

__all__ = ["Convergence", "SweepFile", "SweepSpec", "TaskContext", "convergence_summary",
           "fit_order", "load_sweep", "load_sweep_file", "plot_convergence", "register_task",
           "registered_tasks", "run_point", "run_sweep"]

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(["Convergence", "SweepSpec", "TaskContext", "register_task",
                     "registered_tasks"], "cognitive_action.sweeps.spec"),
    **dict.fromkeys(["load_sweep", "run_point", "run_sweep"], "cognitive_action.sweeps.engine"),
    **dict.fromkeys(["convergence_summary", "fit_order", "plot_convergence"],
                    "cognitive_action.sweeps.summary"),
    **dict.fromkeys(["SweepFile", "load_sweep_file"], "cognitive_action.sweeps.section"),
})
