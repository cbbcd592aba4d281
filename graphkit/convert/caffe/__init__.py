"""``graphkit caffe2tf``: Caffe to a frozen TensorFlow GraphDef, TF-free. The work is in ``converter.py``
(caffe2tf, describe_caffe), the layer handlers in ``spatial.py``, ``elementwise.py``, ``shape.py`` and
``ssd.py`` (one registry), the graph builder in ``builder.py``, BatchNorm folding in ``fold.py``."""

from graphkit.convert.caffe.converter import (
    REGISTRY,
    TRAINING_ONLY,
    CaffeReport,
    Layout,
    caffe2tf,
    convert_layer,
    convert_net,
    describe_caffe,
    supported_layers_table,
)

__all__ = ["REGISTRY", "TRAINING_ONLY", "CaffeReport", "Layout", "caffe2tf", "convert_layer", "convert_net",
           "describe_caffe", "supported_layers_table"]
