"""``graphkit freeze``: variables to constants, TF-free. The work is in ``freezer.py`` (the command's
library function), ``resources.py`` (through function bodies), ``tf2.py`` and ``io/inline.py`` (TF2
SavedModels), ``branches.py`` (the clean-up of functional control flow)."""

from graphkit.freeze.freezer import PROTOBUF_LIMIT, FreezeReport, freeze, resolve_source

__all__ = ["PROTOBUF_LIMIT", "FreezeReport", "freeze", "resolve_source"]
