"""`ort-int8`: the model part exported to ONNX and run by ONNX Runtime on the CPU, the encoder's matmuls in int8.

The export traces the part with torch.onnx's TorchScript exporter (`dynamo=False`; the dynamo exporter is the
fallback when tracing fails), batch axis dynamic, clip shape fixed, so the rotary embedding is exported as fixed
tables (`rope.fixed_rope`). `onnxruntime`'s `MatMulNBitsQuantizer` (8 bits, blocks of 128, symmetric,
`accuracy_level` 4) then turns each weight MatMul of the encoder into `MatMulNBits`: int8 weights with one scale
per block of 128 inputs of an output, int8 products, each row of activations quantized per block of 128 at run
time. The head (attentive pooler, classifier), the encoder blocks asked to stay fp32, the rotary swaps,
attention's activation x activation products, layer norms and softmax stay fp32. Files written:
`model.int8.onnx`. docs/benchmarks/engines.md has the recipes measured against this one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from vjepa_core.inference.engines.base import (
    INPUT,
    OUTPUT,
    EngineUnfit,
    Int8Engine,
    Runner,
    encoder_block,
    first_line,
    fp32_matmuls,
    quiet,
    register,
    threads,
)

GRAPH = "model.int8.onnx"
OPSET = 17
INT8_BLOCK = 128  # inputs per weight scale and per activation scale
PROTOBUF_LIMIT = 2**31 - 2**26  # a graph above this (protobuf's 2 GB, less headroom) keeps its weights beside it


def export_onnx(part: Any, example: Any, path: Path) -> Path:
    """`part` as an ONNX graph at `path`, batch axis dynamic. Raises `EngineUnfit`."""
    import torch

    from vjepa_core.inference.engines.rope import fixed_rope

    try:
        with quiet(""), torch.no_grad(), fixed_rope(part, example):
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


def _export_dynamo(part: Any, example: Any, path: Path) -> Path:
    import torch

    from vjepa_core.inference.engines.rope import fixed_rope

    if example.shape[0] < 2:  # torch.export specialises a size-1 axis: export at batch 2 to keep it dynamic
        example = example.expand(2, *example.shape[1:]).contiguous()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with quiet(""), torch.no_grad(), fixed_rope(part, example):
        torch.onnx.export(part, (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_shapes={INPUT: {0: batch}}, dynamo=True, external_data=True, optimize=True,
                          verbose=False)
    return path


def _weight_matmuls(graph: Any) -> list[str]:
    return [node.name for node in graph.graph.node if node.op_type == "MatMul"]


def quantize_int8(graph: Any, target: Path, *, fp32_blocks: frozenset[int] = frozenset()) -> Path:
    """The encoder's weight MatMuls of `graph` (an `onnx.ModelProto`, left as it is) in 8-bit blocks, but those of
    `fp32_blocks` -> `target` (module doc)."""
    import onnx

    nbits = nbits_quantizer()
    copy = onnx.ModelProto()
    copy.CopyFrom(graph)  # the quantizer rewrites the graph it is given
    excluded = fp32_matmuls(_weight_matmuls(copy), "exported graph", fp32_blocks)
    with quiet("onnxruntime"):
        quantizer = nbits.MatMulNBitsQuantizer(copy, bits=8, block_size=INT8_BLOCK, is_symmetric=True,
                                               accuracy_level=4, nodes_to_exclude=excluded)
        quantizer.process()
        large = quantizer.model.model.ByteSize() > PROTOBUF_LIMIT
        quantizer.model.save_model_to_file(str(target), use_external_data_format=large)
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
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are ours to ignore
    # No busy-waiting between runs: ONNX Runtime's workers otherwise spin after each call and take the cores
    # from whatever runs next in the process (decoding, the eager model).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(pixels: torch.Tensor) -> torch.Tensor:
        array = pixels.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(sess.run(None, {INPUT: array})[0])  # the one output

    return run


@dataclass(frozen=True)
class OnnxInt8Engine(Int8Engine):
    def convert(self, part: Any, example: Any, workdir: Path) -> Any:
        import onnx

        return onnx.load(str(export_onnx(part, example, workdir / "model.onnx")))

    def blocks(self, converted: Any) -> list[int]:
        return sorted({block for name in _weight_matmuls(converted) if (block := encoder_block(name)) is not None})

    def quantize(self, converted: Any, folder: Path, *, fp32_blocks: frozenset[int] = frozenset()) -> None:
        quantize_int8(converted, folder / GRAPH, fp32_blocks=fp32_blocks)

    def open(self, folder: Path) -> Runner:
        return session(folder / GRAPH)


ORT_INT8 = register(OnnxInt8Engine(
    "ort-int8", "ONNX Runtime, the encoder in int8 blocks of 128",
    requires=("onnxruntime", "onnx", "onnxscript"), auto_cpu=2, space=2))
