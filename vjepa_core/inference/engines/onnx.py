"""Engines that export the model part to ONNX and run it with ONNX Runtime on the CPU.

- `ort-fp32`: the exported graph as is (ONNX Runtime's graph optimisations, its MLAS fp32 kernels).
- `ort-int8`: the same graph after `onnxruntime.quantization.quantize_dynamic`: every MatMul with a weight
  becomes `MatMulInteger` on int8 weights (one scale per tensor) with activations quantized per call at run
  time (u8, its AVX2 kernels); attention's activation x activation products, layer norms and softmax stay fp32.

The export traces the part with torch.onnx's TorchScript exporter (`dynamo=False`), batch axis dynamic, clip
shape fixed: the rotary position tables of V-JEPA 2's attention depend on the clip shape only, so they fold
into constants. Measured on tiny-jepa: 4.6 s to export and 37 ms per batch of 2 in ONNX Runtime, against
23.6 s and 51 ms with the dynamo exporter (torch.export + onnxscript; 31 min for a ViT-L-shaped model at a
load of 10); the dynamo exporter is the fallback when tracing fails. Files written: `model.onnx` (weights
beyond protobuf's 2 GB go to external files beside it), and for `ort-int8` `model.int8.onnx`; the fp32 graph
is removed once quantized.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vjepa_core.inference.engines.base import Engine, EngineUnfit, Runner, first_line, quiet, register, threads

INPUT, OUTPUT = "pixel_values_videos", "output"
FP32_GRAPH, INT8_GRAPH = "model.onnx", "model.int8.onnx"
OPSET = 17


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
    """Dynamic int8 quantization of the weight MatMuls of the graph at `source` -> `target`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet(""):
        # Per-tensor s8 weights: per-channel ones use the full s8 range in every channel, and the u8 x s8 AVX2
        # kernel (vpmaddubsw, no VNNI) saturates its int16 pair sums. Measured on a trained tiny-jepa head
        # checkpoint's 54 test videos: max |prob diff| 0.084 per channel, 0.011 per tensor.
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=False,
                         op_types_to_quantize=["MatMul", "Gemm"], extra_options={"MatMulConstBOnly": True})
    return target


def session(path: Path, *, per_clip: bool = False) -> Runner:
    """An ONNX Runtime CPU session on the graph at `path`, as pixels -> output; `per_clip` runs one clip per call."""
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
        if per_clip:
            return torch.cat([torch.from_numpy(sess.run(None, {INPUT: array[i:i + 1]})[0])
                              for i in range(len(array))])
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
        # int8: each activation tensor is quantized with one scale per call, so a batch's largest value sets every
        # clip's scale; one clip per call keeps a clip's answer independent of what it is batched with.
        return session(folder / (INT8_GRAPH if self.int8 else FP32_GRAPH), per_clip=self.int8)


register(OnnxEngine("ort-fp32", "ONNX Runtime, fp32 (exported graph)", cacheable=True,
                    requires=("onnxruntime", "onnx", "onnxscript")))
register(OnnxEngine("ort-int8", "ONNX Runtime, dynamic int8 quantization of the weight matmuls", cacheable=True,
                    requires=("onnxruntime", "onnx", "onnxscript"), int8=True))
