"""Graph surgery with TF's semantics, without TF: prune, remap-input, set-batch, rename, splice.

Each is a library function returning a :class:`SurgeryReport`; the click commands in ``cli.py`` are thin.
"""

from graphkit.surgery.batch import set_batch
from graphkit.surgery.core import SurgeryReport
from graphkit.surgery.prune import prune
from graphkit.surgery.remap import remap_input
from graphkit.surgery.rename import rename
from graphkit.surgery.splice import splice

__all__ = ["SurgeryReport", "prune", "remap_input", "rename", "set_batch", "splice"]
