import numpy as np, onnx, sys
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(1)
IN = int(sys.argv[1]); widths = [256, 256, 128]
nodes, inits = [], []
prev = "x"; d = IN
for i, w in enumerate(widths):
    W = (rng.standard_normal((d, w)) * np.sqrt(2/d)).astype(np.float32)
    b = np.zeros(w, np.float32)
    inits += [numpy_helper.from_array(W, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
    nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [f"h{i}"]))
    nodes.append(helper.make_node("Relu", [f"h{i}"], [f"r{i}"]))
    prev = f"r{i}"; d = w
W = (rng.standard_normal((d, 5)) * 0.1).astype(np.float32)
inits += [numpy_helper.from_array(W, "Wh"), numpy_helper.from_array(np.zeros(5, np.float32), "bh")]
nodes.append(helper.make_node("Gemm", [prev, "Wh", "bh"], ["z"]))
nodes.append(helper.make_node("Sigmoid", ["z"], ["y"]))
g = helper.make_graph(nodes, "ranker", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1000, IN])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1000, 5])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.save(m, "ranker.onnx")
