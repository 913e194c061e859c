"""The study's model names, parsed into builder calls.

Names (``MODEL_NAMES``), exactly as the study writes them:

- baselines (``BASELINE_NAMES``): "U-Net", "ResUNet", "Attention U-Net", "TransUNet", "Proposed";
- ablations (Table 3): "U-Net + Inception module" (the proposed backbone, single output) and
  "U-Net + Dual-output mechanism" (the U-Net with the auxiliary bottleneck head);
- skip attention (Table 4, extended to every combination): "{U-Net, ResUNet, Proposed} + {SAM,
  CBAM, SE block}".

``build_model(name, ...)`` builds one of them; ``**overrides`` go to the builder (``dual_output``,
``dropout``, ``bn_momentum``, TransUNet's ``num_layers``...). A setting the name fixes (the
ablations' ``dual_output``, the variants' ``skip_attention``) cannot be overridden with a
different value. Every model gives a dict of outputs (``"mask"``, and ``"aux"`` when dual) and
names its bottleneck's last activation ``"bottleneck"`` (``bottleneck_layer_name``) and its
decoder stages ``dec<k>_...`` (``decoder_layer_name``).
"""

from __future__ import annotations

import re

import keras

from spine.errors import ConfigError
from spine.models.attention_unet import build_attention_unet
from spine.models.proposed import build_proposed
from spine.models.resunet import build_resunet
from spine.models.transunet import build_transunet
from spine.models.unet import build_unet

BUILDERS = {
    "U-Net": build_unet,
    "ResUNet": build_resunet,
    "Attention U-Net": build_attention_unet,
    "TransUNet": build_transunet,
    "Proposed": build_proposed,
}
BASELINE_NAMES = ("U-Net", "ResUNet", "Attention U-Net", "TransUNet", "Proposed")
ABLATION_NAMES = ("U-Net + Inception module", "U-Net + Dual-output mechanism")
#: Families that take skip attention in the study, and the modules' study names -> builder value.
ATTENTION_FAMILIES = ("U-Net", "ResUNet", "Proposed")
ATTENTION_MODULES = {"SAM": "sam", "CBAM": "cbam", "SE block": "se"}
ATTENTION_NAMES = tuple(f"{family} + {module}" for family in ATTENTION_FAMILIES for module in ATTENTION_MODULES)
MODEL_NAMES = BASELINE_NAMES + ABLATION_NAMES + ATTENTION_NAMES
BOTTLENECK_LAYER = "bottleneck"

_ABLATIONS = {
    "U-Net + Inception module": ("Proposed", {"dual_output": False}),
    "U-Net + Dual-output mechanism": ("U-Net", {"dual_output": True}),
}


def resolve(name: str) -> tuple[str, dict]:
    """``(family, fixed settings)`` for a study name; ``ConfigError`` listing the names if unknown."""
    if name in BUILDERS:
        return name, {}
    if name in _ABLATIONS:
        family, fixed = _ABLATIONS[name]
        return family, dict(fixed)
    if name in ATTENTION_NAMES:
        family, module = name.split(" + ", 1)
        return family, {"skip_attention": ATTENTION_MODULES[module]}
    raise ConfigError(f"unknown model {name!r}; valid names: {', '.join(repr(n) for n in MODEL_NAMES)}")


def model_slug(name: str) -> str:
    """A Keras-safe model name from a study name: "U-Net + SE block" -> "unet_se_block"."""
    slug = re.sub(r"[^0-9a-z]+", "_", name.lower().replace("u-net", "unet")).strip("_")
    return slug or "model"


def build_model(name: str, input_shape=(128, 128, 1), num_classes: int = 2, width: int = 64,
                **overrides) -> keras.Model:
    """Build the study's model ``name`` (one of ``MODEL_NAMES``) as a Keras functional model."""
    family, fixed = resolve(name)
    for key, value in fixed.items():
        if key in overrides and overrides[key] != value:
            raise ConfigError(f"model {name!r} fixes {key}={value!r}; got {key}={overrides[key]!r}")
    kwargs = {**overrides, **fixed}
    try:
        model = BUILDERS[family](input_shape=input_shape, num_classes=num_classes, width=width, **kwargs)
    except TypeError as error:  # an override the builder does not take
        raise ConfigError(f"model {name!r}: {error}") from error
    model.name = model_slug(name)
    return model


def output_names(model: keras.Model) -> tuple[str, ...]:
    """The names of the model's output layers, the keys of its output dict (``("mask",)`` or
    ``("aux", "mask")``... as Keras lists them: a functional model's ``output_names``)."""
    return tuple(model.output_names)


def has_dual_output(model: keras.Model) -> bool:
    """Whether ``model`` has the auxiliary ``aux`` head besides ``mask``."""
    return "aux" in output_names(model)


def bottleneck_layer_name(model: keras.Model) -> str:
    """The name of the bottleneck's last activation layer (the Grad-CAM target): ``"bottleneck"``."""
    try:
        model.get_layer(BOTTLENECK_LAYER)
    except ValueError as error:
        raise ConfigError(f"model {model.name!r} has no layer named {BOTTLENECK_LAYER!r}; "
                          "it was not built by spine.models") from error
    return BOTTLENECK_LAYER


def decoder_layer_name(model: keras.Model, stage: int = 3) -> str:
    """The output layer of decoder stage ``stage`` (4, the deepest, at 1/8 of the input side, ..., 1
    at full size): a finer Grad-CAM target than the bottleneck, e.g. ``"dec3_block_2_relu"`` at
    1/4 in the U-Net family. It is the last layer of the stage's block in the model's layer order."""
    names = [layer.name for layer in model.layers if layer.name.startswith(f"dec{stage}_block")]
    if not names:
        raise ConfigError(f"model {model.name!r} has no decoder stage {stage!r} (layers named dec{stage}_block...); "
                          "it was not built by spine.models, or the stage is not 1-4")
    return names[-1]
