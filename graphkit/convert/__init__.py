"""``graphkit convert``: any model graphkit reads to ONNX or TFLite, verified. The work is in
``exporter.py``; ``caffe/`` is caffe2tf."""

from graphkit.convert.exporter import ConvertReport, ExportTarget, convert

__all__ = ["ConvertReport", "ExportTarget", "convert"]
