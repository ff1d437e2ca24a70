"""Engines that convert the model part to OpenVINO and run it on its CPU plugin.

- `openvino-fp32`: `openvino.convert_model` of the part (captured by `torch.export`), fp32 weights and inference.
- `openvino-int8`: the same model after `nncf.compress_weights(mode=INT8_ASYM)` on the encoder's weight
  matmuls (the head stays fp32, as in `ort-int8`): int8 weights per output channel; the CPU plugin quantizes
  each such layer's activations at run time in groups of 32 (`DYNAMIC_QUANTIZATION_GROUP_SIZE`, its default)
  and multiplies in int8. On the ViT-L-shaped model the head in fp32 took the probe bound from 0.0098 to 0.0074.

The batch axis is dynamic, the clip shape fixed. Files written: `model.xml` + `model.bin` (weights kept as
they are: `save_model` would halve fp32 weights to fp16 unless told not to).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

GRAPH = "model.xml"


def convert(part: torch.nn.Module, example: torch.Tensor, *, int8: bool) -> object:
    """The part as an `openvino.Model` (int8-compressed weights when `int8`). Raises `EngineUnfit`."""
    try:
        with quiet("nncf"), torch.no_grad():
            model = _converted(part, example)
            if int8:
                import nncf

                matmuls = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "MatMul"]
                head = nncf.IgnoredScope(names=head_matmuls(matmuls, "converted model"), validate=False)
                model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM, ignored_scope=head)
    except Exception as error:  # the frontends raise many kinds: each means "cannot convert"
        raise EngineUnfit(f"cannot convert to OpenVINO ({first_line(error)})") from error
    return model


def _converted(part: torch.nn.Module, example: torch.Tensor) -> object:
    """The part in OpenVINO, batch axis dynamic, each op named after the module it came from.

    Through `torch.export` first: on the ViT-L-shaped model it converts in 48 s with a peak RSS of 2.5 GB, where
    TorchScript tracing took 171 s and 10.5 GB. Its ops are named after graph nodes (`linear_7/...`) and renamed
    `<module path>/linear_7/...`, as tracing names them. A part `torch.export` cannot capture is traced instead."""
    import openvino as ov

    shape = ov.PartialShape([-1, *example.shape[1:]])
    try:
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(part, (example,), dynamic_shapes=({0: batch},))
    except Exception:  # data-dependent control flow and the like: tracing follows the example's path
        return ov.convert_model(part, example_input=example, input=[shape])
    modules = {node.name: list(stack.values())[-1][0] for node in program.graph.nodes
               if (stack := node.meta.get("nn_module_stack"))}
    model = ov.convert_model(program, input=[shape])
    for op in model.get_ops():
        name = op.get_friendly_name()
        if (module := modules.get(name.split("/")[0])) is not None:
            op.set_friendly_name(f"{module}/{name}")
    return model


def compiled(path: Path) -> Runner:
    import openvino as ov

    model = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads(),
                                                       "INFERENCE_PRECISION_HINT": "f32",
                                                       "PERFORMANCE_HINT": "LATENCY"})

    def run(pixels: torch.Tensor) -> torch.Tensor:
        array = pixels.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(model(array)[0].copy())

    return run


@dataclass(frozen=True)
class OpenVinoEngine(Engine):
    int8: bool = False

    def export(self, part: torch.nn.Module, example: torch.Tensor, folder: Path) -> None:
        import openvino as ov

        ov.save_model(convert(part, example, int8=self.int8), str(folder / GRAPH), compress_to_fp16=False)

    def open(self, folder: Path) -> Runner:
        return compiled(folder / GRAPH)


register(OpenVinoEngine("openvino-fp32", "OpenVINO CPU plugin, fp32", cacheable=True, requires=("openvino",)))
register(OpenVinoEngine("openvino-int8", "OpenVINO CPU plugin, int8 weights (NNCF) and dynamically quantized "
                        "activations", cacheable=True, requires=("openvino", "nncf"), int8=True))
