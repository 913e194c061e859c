"""The model zoo of the study (Silveira et al., Scientific Reports 2025), Keras 3 functional models.

Builders, one per family, each ``build_x(input_shape=(128, 128, 1), num_classes=2, width=64,
dual_output=..., skip_attention=None, dropout=0.5, bn_momentum=0.99) -> keras.Model``:

- ``build_unet``            U-Net (Ronneberger et al., 2015) with BatchNorm
- ``build_resunet``         ResUNet (residual blocks)
- ``build_attention_unet``  Attention U-Net (attention gates on the skips)
- ``build_transunet``       TransUNet (CNN encoder + Transformer on the bottleneck tokens + CUP)
- ``build_proposed``        the proposed Inception + dual-output U-Net (``dual_output=True`` default)

Every model returns a dict: ``{"mask": (B, H, W, C)}`` softmax, plus ``"aux": (B, H/16, W/16, C)``
with ``dual_output=True``; its bottleneck's last activation is the layer ``"bottleneck"``.
``width`` is the base filter count (the study's 64); every filter count scales with ``width/64``.
Input height and width must be multiples of 16.

``build_model(name, ...)`` builds any of ``MODEL_NAMES`` (the study's names, ablations and skip
attention variants included); ``parameter_table()`` compares the counts with the study's.

How the study's ambiguities were settled (details in each module's docstring): the counts of
Table 8 were reverse-engineered, non-trainable parameters giving the BatchNorm channels, and the
four CNN baselines and the proposed model reproduce them exactly (total, trainable and
non-trainable); TransUNet is within 0.2 % with the non-trainable count exact. Upsampling is a
learned 2x2 stride-2 transposed convolution; convolutions keep their biases before BatchNorm.

Importing this package registers the custom layers (``PositionalEmbedding``, ``ChannelPool``)
under the package ``"spine"``, so ``keras.saving.load_model`` reloads a saved ``.keras`` file.
"""

from spine.models.attention_unet import build_attention_unet
from spine.models.layers import ChannelPool, PositionalEmbedding
from spine.models.proposed import build_proposed
from spine.models.registry import (
    ABLATION_NAMES,
    ATTENTION_NAMES,
    BASELINE_NAMES,
    MODEL_NAMES,
    bottleneck_layer_name,
    build_model,
    decoder_layer_name,
    has_dual_output,
)
from spine.models.report import count_parameters, parameter_counts, parameter_table
from spine.models.resunet import build_resunet
from spine.models.transunet import build_transunet
from spine.models.unet import build_unet

__all__ = [
    "ABLATION_NAMES",
    "ATTENTION_NAMES",
    "BASELINE_NAMES",
    "MODEL_NAMES",
    "ChannelPool",
    "PositionalEmbedding",
    "bottleneck_layer_name",
    "build_attention_unet",
    "build_model",
    "build_proposed",
    "build_resunet",
    "build_transunet",
    "build_unet",
    "count_parameters",
    "decoder_layer_name",
    "has_dual_output",
    "parameter_counts",
    "parameter_table",
]
