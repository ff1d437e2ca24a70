"""`openvino-int8`: the model part converted to OpenVINO and run on its CPU plugin, the encoder's weights in int8.

`openvino.convert_model` of the part (captured by `torch.export`), then `nncf.compress_weights(mode=INT8_ASYM)`
on the encoder's weight matmuls: int8 weights per output channel; the CPU plugin quantizes each such layer's
activations at run time in groups (`DYNAMIC_QUANTIZATION_GROUP_SIZE`, written into the model file:
`activation_group`) and multiplies in int8. The rotary embedding is exported
as fixed tables (`rope.fixed_rope`). The head (attentive pooler, classifier), the encoder blocks asked to stay
fp32 and the rotary swaps are left out through an NNCF `IgnoredScope`. The batch axis is dynamic, the clip shape
fixed. Files written: `model.xml` + `model.bin` (weights kept as they are: `save_model` would halve fp32 weights
to fp16 unless told not to).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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

GRAPH = "model.xml"
GROUP_OPTION = ["runtime_options", "DYNAMIC_QUANTIZATION_GROUP_SIZE"]  # read by the CPU plugin from the model file
# How the CPU plugin compiles an engine (threads apart): fp32 arithmetic (on CPUs with bf16 or AMX the plugin's
# default is bf16, which the check never saw), tuned for one request at a time. A released Space passes the same.
RUN_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


def convert(part: Any, example: Any, *, int8: bool, fp32_blocks: frozenset[int] = frozenset()) -> Any:
    """The part as an `openvino.Model` (int8-compressed encoder weights when `int8`). Raises `EngineUnfit`."""
    import torch

    from vjepa_core.inference.engines.rope import fixed_rope

    try:
        with quiet("nncf"), torch.no_grad(), fixed_rope(part, example):
            model = _converted(part, example)
    except Exception as error:  # the frontends raise many kinds: each means "cannot convert"
        raise EngineUnfit(f"cannot convert to OpenVINO ({first_line(error)})") from error
    model.set_rt_info(str(activation_group(part)), GROUP_OPTION)
    return compress(model, fp32_blocks) if int8 else model


def activation_group(part: Any) -> int:
    """Inputs per activation scale when the plugin quantizes activations at run time: an eighth of the encoder's
    narrowest weight matmul, as a power of two from 32 to 128. On a ViT-L-shaped model 128 ran 1.3 times faster
    than the plugin's default of 32 at the same answers; on `tiny-jepa` (128 wide) a single group per row moved
    the most sensitive video's probabilities twice as far (docs/benchmarks/engines.md)."""
    import torch

    widths = [module.in_features for name, module in part.named_modules()  # LoRA's own factors are not the width
              if isinstance(module, torch.nn.Linear) and encoder_block(name) is not None and ".lora_" not in name]
    eighth = min(widths, default=256) // 8
    return min(128, max(32, 1 << max(eighth.bit_length() - 1, 0)))


def _matmuls(model: Any) -> list[str]:
    return [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "MatMul"]


def compress(model: Any, fp32_blocks: frozenset[int] = frozenset()) -> Any:
    """A copy of `model` with the encoder's weights in int8, but those of `fp32_blocks`. Raises `EngineUnfit`."""
    try:
        with quiet("nncf"):
            import nncf

            # The patch embedding's convolution stays fp32 too, as in ort-int8: a sliver of the compute, and in
            # int8 it moved the probabilities as much as every encoder block together.
            kept = nncf.IgnoredScope(names=fp32_matmuls(_matmuls(model), "converted model", fp32_blocks),
                                     types=["Convolution"], validate=False)
            return nncf.compress_weights(model.clone(), mode=nncf.CompressWeightsMode.INT8_ASYM, ignored_scope=kept)
    except EngineUnfit:
        raise
    except Exception as error:
        raise EngineUnfit(f"cannot compress the OpenVINO model ({first_line(error)})") from error


def _converted(part: Any, example: Any) -> Any:
    """The part in OpenVINO, batch axis dynamic, each op named after the module it came from.

    Through `torch.export` first (on a ViT-L-shaped model a quarter of TorchScript tracing's time and memory:
    docs/benchmarks/engines.md). Its ops are named after graph nodes (`linear_7/...`) and renamed
    `<module path>/linear_7/...`, as tracing names them. A part `torch.export` cannot capture is traced instead."""
    import openvino as ov
    import torch

    shape = ov.PartialShape([-1, *example.shape[1:]])
    try:
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(part, (example,), dynamic_shapes=({0: batch},))
    except Exception:  # data-dependent control flow and the like: tracing follows the example's path
        return _named(ov.convert_model(part, example_input=example, input=[shape]))
    modules = {node.name: list(stack.values())[-1][0] for node in program.graph.nodes
               if (stack := node.meta.get("nn_module_stack"))}
    model = ov.convert_model(program, input=[shape])
    for op in model.get_ops():
        name = op.get_friendly_name()
        if (module := modules.get(name.split("/")[0])) is not None:
            op.set_friendly_name(f"{module}/{name}")
    return _named(model)


def _named(model: Any) -> Any:
    """`model` with its input and output named as in every engine's files (`INPUT`, `OUTPUT`)."""
    model.inputs[0].get_tensor().set_names({INPUT})
    model.outputs[0].get_tensor().set_names({OUTPUT})
    return model


def compiled(model: Path | Any) -> Runner:
    """A runner of an OpenVINO model (its file, or the model itself) compiled for the CPU, in fp32 arithmetic."""
    import openvino as ov
    import torch

    config = {"INFERENCE_NUM_THREADS": threads(), **RUN_CONFIG}
    model = ov.Core().compile_model(str(model) if isinstance(model, Path) else model, "CPU", config)

    def run(pixels: torch.Tensor) -> torch.Tensor:
        array = pixels.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(model(array)[0].copy())

    return run


@dataclass(frozen=True)
class OpenVinoInt8Engine(Int8Engine):
    def convert(self, part: Any, example: Any, workdir: Path) -> Any:
        return convert(part, example, int8=False)

    def blocks(self, converted: Any) -> list[int]:
        return sorted({block for name in _matmuls(converted) if (block := encoder_block(name)) is not None})

    def quantize(self, converted: Any, folder: Path, *, fp32_blocks: frozenset[int] = frozenset()) -> None:
        import openvino as ov

        ov.save_model(compress(converted, fp32_blocks), str(folder / GRAPH), compress_to_fp16=False)

    def trial(self, converted: Any, fp32_blocks: frozenset[int]) -> Runner:
        return compiled(compress(converted, fp32_blocks))

    def open(self, folder: Path) -> Runner:
        return compiled(folder / GRAPH)


OPENVINO_INT8 = register(OpenVinoInt8Engine(
    "openvino-int8", "OpenVINO, the encoder's weights in int8 (NNCF)", requires=("openvino", "nncf"), auto_cpu=1,
    space=1))
