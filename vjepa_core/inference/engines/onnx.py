"""Engines that export the model part to ONNX and run it with ONNX Runtime on the CPU.

- `ort-fp32`: the exported graph as is (ONNX Runtime's graph optimisations, its MLAS fp32 kernels).
- `ort-int8`: the same graph after `onnxruntime`'s `MatMulNBitsQuantizer` (8 bits, blocks of 128, symmetric,
  `accuracy_level` 4): each weight MatMul of the encoder becomes `MatMulNBits` with int8 weights, one scale per
  block of 128 inputs of an output, and multiplies in int8, each row of activations quantized per block of 128
  at run time. The head (attentive pooler, classifier: every MatMul outside the encoder) stays fp32, and so do
  attention's activation x activation products, layer norms and softmax.

The export traces the part with torch.onnx's TorchScript exporter (`dynamo=False`), batch axis dynamic, clip
shape fixed: the rotary position tables of V-JEPA 2's attention depend on the clip shape only, so they fold
into constants. Measured on tiny-jepa: 4.6 s to export and 37 ms per batch of 2 in ONNX Runtime, against
23.6 s and 51 ms with the dynamo exporter (torch.export + onnxscript; 31 min for a ViT-L-shaped model at a
load of 10); the dynamo exporter is the fallback when tracing fails. Files written: `model.onnx` (weights
beyond protobuf's 2 GB go to external files beside it), and for `ort-int8` `model.int8.onnx`; the fp32 graph
is removed once quantized.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from vjepa_core.inference.engines.base import (
    Engine,
    EngineUnfit,
    Runner,
    first_line,
    head_matmuls,
    quiet,
    register,
    threads,
)

INPUT, OUTPUT = "pixel_values_videos", "output"
FP32_GRAPH, INT8_GRAPH = "model.onnx", "model.int8.onnx"
OPSET = 17
INT8_BLOCK = 128  # inputs per weight scale and per activation scale


def export_onnx(part: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """`part` as an ONNX graph at `path`, batch axis dynamic. Raises `EngineUnfit`."""
    try:
        with quiet(""), torch.no_grad():
            torch.onnx.export(part, (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}, opset_version=OPSET,
                              dynamo=False)
        return path
    except Exception as traced:  # tracing or its symbolic functions fail in many ways: try the other exporter
        for stale in path.parent.iterdir():  # a partial graph of the failed export
            if stale.is_file():
                stale.unlink()
        try:
            return _export_dynamo(part, example, path)
        except Exception as error:
            raise EngineUnfit(f"cannot export to ONNX ({first_line(traced)}; {first_line(error)})") from error


def _export_dynamo(part: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    if example.shape[0] < 2:  # torch.export specialises a size-1 axis: export at batch 2 to keep it dynamic
        example = example.expand(2, *example.shape[1:]).contiguous()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with quiet(""), torch.no_grad():
        torch.onnx.export(part, (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_shapes={INPUT: {0: batch}}, dynamo=True, external_data=True, optimize=True,
                          verbose=False)
    return path


def quantize_int8(source: Path, target: Path) -> Path:
    """The encoder's weight MatMuls of the graph at `source` quantized to 8-bit blocks -> `target` (module doc)."""
    import onnx

    nbits = nbits_quantizer()
    # Measured against quantize_dynamic's MatMulInteger (per-tensor s8 weights, one activation scale per call) on
    # 5 trained tiny-jepa checkpoints' 54 test videos: max |prob diff| over fp32 0.0042-0.0189 against 0.0148-0.169
    # (the pooler carried most of that error; kept fp32 with MatMulInteger it was still 0.0055-0.0387). On the
    # ViT-L-shaped model: 9.0 s per clip against 6.6 s (8.0 s with the pooler fp32), probe bound 0.0057 against
    # 0.0133. Blocks of 32 were more exact (0.0021-0.0073) but slower (11.2 s); the README has the figures.
    graph = onnx.load(str(source))
    head = head_matmuls([node.name for node in graph.graph.node if node.op_type == "MatMul"], "exported graph")
    with quiet("onnxruntime"):
        quantizer = nbits.MatMulNBitsQuantizer(graph, bits=8, block_size=INT8_BLOCK, is_symmetric=True,
                                               accuracy_level=4, nodes_to_exclude=head)
        quantizer.process()
        quantizer.model.save_model_to_file(str(target), use_external_data_format=False)
    return target


def nbits_quantizer() -> ModuleType:
    """onnxruntime's MatMulNBits quantizer module, imported without the `logging.basicConfig(level=INFO)` it runs
    on import (which would print every INFO record of the process): that call does nothing when the root logger
    already has a handler."""
    root, guard = logging.getLogger(), logging.NullHandler()
    root.addHandler(guard)
    try:
        from onnxruntime.quantization import matmul_nbits_quantizer
    finally:
        root.removeHandler(guard)
    return matmul_nbits_quantizer


def session(path: Path) -> Runner:
    """An ONNX Runtime CPU session on the graph at `path`, as pixels -> output."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are ours to ignore
    # No busy-waiting between runs: ONNX Runtime's workers otherwise spin after each call and take the cores
    # from whatever runs next in the process (decoding, the eager model; measured: eager tiny-jepa 332 vs
    # ms per clip with a spinning session beside it).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(pixels: torch.Tensor) -> torch.Tensor:
        array = pixels.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(sess.run(None, {INPUT: array})[0])  # the one output

    return run


@dataclass(frozen=True)
class OnnxEngine(Engine):
    int8: bool = False

    def export(self, part: torch.nn.Module, example: torch.Tensor, folder: Path) -> None:
        graph = export_onnx(part, example, folder / FP32_GRAPH)
        if self.int8:
            quantize_int8(graph, folder / INT8_GRAPH)
            for item in folder.iterdir():  # the fp32 graph and any external weight files of it
                if item.name != INT8_GRAPH:
                    item.unlink()

    def open(self, folder: Path) -> Runner:
        return session(folder / (INT8_GRAPH if self.int8 else FP32_GRAPH))


register(OnnxEngine("ort-fp32", "ONNX Runtime, fp32 (exported graph)", cacheable=True,
                    requires=("onnxruntime", "onnx", "onnxscript")))
register(OnnxEngine("ort-int8", "ONNX Runtime, the encoder's weight matmuls in int8 (blocks of 128)", cacheable=True,
                    requires=("onnxruntime", "onnx", "onnxscript"), int8=True))
