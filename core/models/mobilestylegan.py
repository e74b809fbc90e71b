"""MobileStyleGAN on OpenVINO: the default face model, photoreal 1024-px faces on a CPU.

Model: MobileStyleGAN (Belousov 2021, "MobileStyleGAN: A Lightweight Convolutional Neural Network for
High-Fidelity Image Synthesis", arXiv:2104.04767), distilled from StyleGAN2 trained on FFHQ (Karras
et al.). Files: OpenVINO IR version 10, fp32, from the PyPI wheel `random-face` 2021.7.21.1, copied by
`core.build.mobilestylegan` (weights/README.md: sha256 and licences; the FFHQ-derived weights are for
non-commercial use).

- Mapping network: input `var` (1, 512), z ~ N(0, I); output `style` (1, 512).
- Synthesis network: input `style` (1, 512); output `img` (1, 3, 1024, 1024), RGB in about [-1, 1].

In the synthesis graph the one `style` input feeds 23 modulation `MatMul` nodes, one per layer, plus
one `ShapeOf`. `_per_layer_styles` gives each MatMul its own input `style{i}` with OpenVINO's graph
API, so each layer can take another face's style (style mixing). Layer order is the order of the
MatMul names (`Gemm_11` ... `Gemm_743`), which is the order the layers run in.

Speed (bench/bench_faces.py): inference in f32 (the precision the model was made in; OpenVINO's
default bf16 on CPUs with AVX512-BF16 moved a face's pixels by up to 19 8-bit levels, and without
AMX it was slower), one compiled model per use: a throughput-hinted one with several infer requests
in flight for waves of faces, and a latency-hinted one, compiled the first time a single face is
asked for (each compiled model holds about 600 MB). Both run batch 1, so a face has the same pixels
alone or in a batch.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

import numpy as np

from core.errors import ModelNotFound, UnsafeModelFile, brief
from core.models.style_generator import MEAN_STYLE_SAMPLES, MEAN_STYLE_SEED, StyleGenerator

MAPPING, SYNTHESIS = "MappingNetwork.xml", "SynthesisNetwork.xml"
RESOLUTION = 1024
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


class MobileStyleGAN(StyleGenerator):
    """The IR pair in `folder` (MappingNetwork.{xml,bin}, SynthesisNetwork.{xml,bin}) on OpenVINO's CPU.

    Raises (constructor):
        ModelNotFound: a file is missing (run `bash scripts/setup.sh`).
        UnsafeModelFile: OpenVINO cannot read the files, or the graphs do not have the inputs and
            outputs above.
    """

    resolution = RESOLUTION
    source = ("MobileStyleGAN (Belousov 2021, arXiv:2104.04767), distilled from StyleGAN2-FFHQ; IR files "
              "from PyPI random-face 2021.7.21.1 (Apache-2.0 code; FFHQ-derived weights: non-commercial)")

    def __init__(self, folder: str | Path) -> None:
        ov = openvino()

        folder = Path(folder)
        for name in (MAPPING, SYNTHESIS):
            for suffix in (".xml", ".bin"):
                if not (folder / name).with_suffix(suffix).is_file():
                    raise ModelNotFound(f"MobileStyleGAN file {Path(name).stem}{suffix} is missing; "
                                        "run `bash scripts/setup.sh` to copy it from its wheel")
        self._core = ov.Core()
        try:
            mapping = self._core.read_model(folder / MAPPING)
            synthesis = self._core.read_model(folder / SYNTHESIS)
        except RuntimeError as err:
            raise UnsafeModelFile(f"OpenVINO cannot read the MobileStyleGAN files ({brief(err)})") from None
        self._check_io(mapping, "var", "style")
        self._check_io(synthesis, "style", "img")
        self.layer_sides = _per_layer_styles(synthesis)
        self._synthesis = synthesis
        self._mapping = self._core.compile_model(mapping, "CPU", F32)
        self._throughput = self._core.compile_model(synthesis, "CPU", {**F32, "PERFORMANCE_HINT": "THROUGHPUT"})
        self._latency = None  # compiled when a single face is first asked for (about 600 MB more)
        self._requests = max(1, int(self._throughput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.wave = self._requests
        self._mean: np.ndarray | None = None
        self._lock = threading.Lock()  # one caller at a time per compiled model's requests

    @staticmethod
    def _check_io(model, given: str, made: str) -> None:
        inputs = [p.get_friendly_name() for p in model.get_parameters()]
        outputs = {name for out in model.outputs for name in out.get_names()}
        if inputs != [given] or made not in outputs:
            raise UnsafeModelFile(f"not a MobileStyleGAN graph: expected input {given!r} and output {made!r}, "
                                  f"found inputs {inputs} and outputs {sorted(outputs)}")

    def mapping(self, z: np.ndarray) -> np.ndarray:
        """z float32 (N, 512) -> styles float32 (N, 512); each row alone (batch 1), so a face's style
        does not depend on the others in its batch."""
        z = np.ascontiguousarray(z, dtype=np.float32)
        with self._lock:
            return np.concatenate([self._mapping({"var": row[None]})["style"] for row in z]).astype(np.float32)

    def mean_style(self) -> np.ndarray:
        """Mean of `MEAN_STYLE_SAMPLES` (4096) mapped latents from `np.random.default_rng(MEAN_STYLE_SEED)`,
        as the wheel's own engine computes it (there with an unseeded generator); cached."""
        if self._mean is None:
            z = np.random.default_rng(MEAN_STYLE_SEED).standard_normal((MEAN_STYLE_SAMPLES, self.z_dim),
                                                                      dtype=np.float32)
            self._mean = self.mapping(z).mean(axis=0, dtype=np.float64).astype(np.float32)
        return self._mean

    def synthesis(self, ws: np.ndarray) -> np.ndarray:
        """ws float32 (N, 23, 512) -> pictures float32 (N, 3, 1024, 1024) in about [-1, 1]; one face
        on the latency-hinted model, several in flight on the throughput-hinted one."""
        ov = openvino()

        ws = np.ascontiguousarray(ws, dtype=np.float32)
        feeds = [{f"style{i}": face[i][None] for i in range(self.num_layers)} for face in ws]
        with self._lock:
            if len(feeds) == 1:
                if self._latency is None:
                    self._latency = self._core.compile_model(self._synthesis, "CPU",
                                                             {**F32, "PERFORMANCE_HINT": "LATENCY"})
                return self._latency(feeds[0])[self._latency.output(0)].copy()
            out = np.empty((len(feeds), 3, RESOLUTION, RESOLUTION), np.float32)
            queue = ov.AsyncInferQueue(self._throughput, min(self._requests, len(feeds)))
            queue.set_callback(lambda request, i: np.copyto(out[i], request.get_output_tensor(0).data[0]))
            for i, feed in enumerate(feeds):
                queue.start_async(feed, i)
            queue.wait_all()
            return out


def openvino():
    """The `openvino` module, imported without its telemetry.

    `import openvino` imports its model converter, which imports PyPI `openvino-telemetry` when it is
    installed (a dependency of `openvino`); that writes a client id and stats under ~/intel. Marking
    `openvino_telemetry` as absent before the first import makes the converter take its own
    fallback, `openvino.tools.ovc.telemetry_stub` (no files, no network). Nothing here uses the
    converter; a server should not write to its user's home folder or reach out on its own.
    """
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)
    import openvino as ov

    return ov


def _per_layer_styles(model) -> tuple[int, ...]:
    """Give each modulation MatMul of the synthesis `model` its own input `style{i}` (in place) and
    return the feature side each one modulates, in layer order.

    The ShapeOf that also reads `style` (it only needs the batch size) is moved to `style0`; the old
    input is then removed, so the compiled model has exactly the per-layer inputs.

    Raises:
        UnsafeModelFile: `style` feeds no MatMul, or a MatMul's layer has no convolution after it.
    """
    ov = openvino()

    style = model.get_parameters()[0]
    readers = list(style.output(0).get_target_inputs())
    matmuls = sorted((r for r in readers if r.get_node().get_type_name() == "MatMul"),
                     key=lambda r: [int(n) for n in re.findall(r"\d+", r.get_node().get_friendly_name())])
    if not matmuls:
        raise UnsafeModelFile("not a MobileStyleGAN graph: its style input feeds no modulation layer")
    inputs, sides = [], []
    for i, reader in enumerate(matmuls):
        parameter = ov.opset13.parameter(style.get_partial_shape(), ov.Type.f32, name=f"style{i}")
        parameter.output(0).set_names({f"style{i}"})
        sides.append(_side_of(reader.get_node()))
        reader.replace_source_output(parameter.output(0))
        inputs.append(parameter)
    for reader in readers:
        if reader.get_node().get_type_name() != "MatMul":
            reader.replace_source_output(inputs[0].output(0))
    model.remove_parameter(style)
    model.add_parameters(inputs)
    model.validate_nodes_and_infer_types()
    return tuple(sides)


def _side_of(node) -> int:
    """The output side (px) of the first convolution downstream of `node`: the layer it modulates."""
    frontier, seen = [node], set()
    while frontier:
        following = []
        for current in frontier:
            for output in current.outputs():
                for target in output.get_target_inputs():
                    found = target.get_node()
                    if "Convolution" in found.get_type_name():
                        return int(found.get_output_partial_shape(0)[2].get_length())
                    if found.get_friendly_name() not in seen:
                        seen.add(found.get_friendly_name())
                        following.append(found)
        frontier = following
    raise UnsafeModelFile(f"not a MobileStyleGAN graph: no convolution after {node.get_friendly_name()}")
