"""``graphkit edit-checkpoint``: a checkpoint's subset, under other names, TF-free (the work is in
``edit.py``; the writer is ``graphkit.io.bundle``)."""

from graphkit.ckpt.edit import EditReport, edit_checkpoint

__all__ = ["EditReport", "edit_checkpoint"]
