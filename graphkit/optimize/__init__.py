"""``graphkit optimize``: inference-ready frozen graphs, TF-free (the pipeline is ``pipeline.py``; each
pass a module: ``cleanup.py`` (strip-training, dedupe, cleanup), ``branches.py`` (constants,
dead-branches), ``fold.py``, ``batchnorm.py``, ``fuse.py``)."""

from graphkit.optimize.pipeline import PASSES, OptimizeReport, PassReport, optimize

__all__ = ["PASSES", "OptimizeReport", "PassReport", "optimize"]
