"""What graphkit knows about TensorFlow's ops by name: the named op groups every pass shares, in one place.

Per-op facts TF defines (inputs, outputs, attrs and their defaults) come from the OpDef table instead
(:class:`graphkit.io.functions.OpDefs`); heuristics that belong to one analysis (which ops look like a
model's head, in ``io/roles.py``) stay with it. No dependencies."""

from __future__ import annotations

# -- variables, placeholders ---------------------------------------------------------------------------------
VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp", "AutoReloadVariable"})
PLACEHOLDER_OPS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})
# ops that read a resource variable's value (freeze turns each into a value op)
VARIABLE_READERS = frozenset({"ReadVariableOp", "ResourceGather", "ResourceGatherNd", "VariableShape",
                              "_ReadVariablesOp", "VarIsInitializedOp"})
# ops that change a resource variable (freeze drops them: a frozen graph has no state)
VARIABLE_MUTATIONS = frozenset({
    "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp", "AssignNewValue",
    "ResourceStridedSliceAssign", "ResourceCountUpTo", "DestroyResourceOp", "DisableCopyOnRead",
})
_MUTATION_PREFIXES = ("ResourceScatter", "ResourceApply", "ResourceSparseApply")


def is_variable_mutation(op: str) -> bool:
    return op in VARIABLE_MUTATIONS or op.startswith(_MUTATION_PREFIXES)


# -- functions and control flow ------------------------------------------------------------------------------
CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
BRANCH_OPS = frozenset({"If", "StatelessIf", "Case", "StatelessCase"})
LOOP_OPS = frozenset({"While", "StatelessWhile"})
FUNCTIONAL_CONTROL_FLOW = BRANCH_OPS | LOOP_OPS
MERGE_OPS = frozenset({"Merge", "RefMerge"})
NEXT_ITERATION_OPS = frozenset({"NextIteration", "RefNextIteration"})
# TF1 control-flow primitives: TF's executor runs them itself, and tf2onnx's loop and cond rewriters turn
# them into Loop/If (tf2onnx/rewriter/loop_rewriter.py, cond_rewriter.py)
TF1_CONTROL_FLOW = frozenset({"Enter", "RefEnter", "Exit", "RefExit", "LoopCond", "ControlTrigger", "Switch",
                              "RefSwitch"}) | MERGE_OPS | NEXT_ITERATION_OPS

# -- data flow -----------------------------------------------------------------------------------------------
# ops whose output is their first input at inference: prune --strip-training bypasses them (TF's
# graph_util.remove_training_nodes does the same for Identity, CheckNumerics, StopGradient...)
INFERENCE_IDENTITIES = frozenset({"Identity", "StopGradient", "PreventGradient", "Snapshot", "CheckNumerics",
                                  "Print"})
# ops run only for their side effect, which prune drops with --strip-training
SIDE_EFFECT_ONLY = frozenset({"Assert", "PrintV2"})
# ops a resource handle flows through unchanged on output 0, and those with more outputs that forward
# their inputs (freeze follows a variable's handle through both)
HANDLE_FORWARDING_PORT0 = frozenset({"Identity", "Snapshot", "Enter", "Exit", "NextIteration", "Merge",
                                     "RefIdentity", "RefEnter", "RefExit", "RefNextIteration", "RefMerge"})
HANDLE_FORWARDING = HANDLE_FORWARDING_PORT0 | {"IdentityN", "Switch", "RefSwitch", "_SwitchN"}

# -- running -------------------------------------------------------------------------------------------------
# ops that touch the file system or run arbitrary code when the graph runs (run refuses them by default)
UNSAFE_OPS = frozenset({
    "ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc", "Save", "SaveV2",
    "SaveSlices", "MergeV2Checkpoints", "ShardedFilename", "WholeFileReader", "WholeFileReaderV2",
    "TFRecordReader", "TFRecordReaderV2", "TextLineReader", "TextLineReaderV2", "FixedLengthRecordReader",
    "FixedLengthRecordReaderV2", "ImmutableConst", "DeleteSessionTensor", "Restore", "RestoreV2", "RestoreSlice",
    "LoadAndRemapMatrix", "DebugIdentity", "SummaryWriter", "CreateSummaryFileWriter", "WriteSummary",
    "DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "SaveDataset", "SaveDatasetV2",
})
