"""U-Net (Ronneberger et al., 2015), the study's baseline, with BatchNorm.

Layout at width 64 (input 128x128x1, 2 classes): encoder blocks of two 3x3 conv -> BN -> ReLU
with 64, 128, 256, 512 filters, each followed by a 2x2 max-pool (dropout 0.5 after block 4);
bottleneck of two 3x3 convs with 1,024 filters; decoder stages of a 2x2 stride-2 transposed conv,
concatenation of the skip and two 3x3 conv -> BN -> ReLU; a 1x1 conv + softmax head named
``mask``.

Reverse-engineered from the study's count (Table 8: 31,050,114 total, 31,040,386 trainable,
9,728 non-trainable), which this builder reproduces exactly:

- 9,728 non-trainable = 4,864 BN channels = 1,920 (encoder, BN after every conv) + 1,920
  (decoder, BN after every conv) + 1,024: the bottleneck has a *single* BatchNorm, placed after
  its second ReLU and before the dropout ("ReLU + BatchNorm + dropout 0.5" in the text). The
  proposed model and the Attention U-Net, by their counts, have BN after both bottleneck convs.
- Upsampling: learned 2x2 kernels (``Conv2DTranspose(f, 2, strides=2)``); 3x3 up-convs or
  parameter-free upsampling do not fit the count.

``dual_output=True`` adds the auxiliary 1x1 conv + softmax head ``aux`` on the bottleneck (the
"U-Net + Dual-output mechanism" ablation, +2,050 parameters at 2 classes); ``skip_attention``
(``"sam"``, ``"cbam"``, ``"se"``) puts that module on each of the four skips ("U-Net + SAM"...).
"""

from __future__ import annotations

import keras

from spine.models import blocks


def build_unet(input_shape=(128, 128, 1), num_classes: int = 2, width: int = 64, dual_output: bool = False,
               skip_attention=None, dropout: float = 0.5, bn_momentum: float = 0.99) -> keras.Model:
    """The U-Net baseline; outputs ``{"mask": (B,H,W,C)}`` (+ ``"aux": (B,H/16,W/16,C)`` if dual)."""
    blocks.check_config(input_shape, num_classes, width, dropout)
    attention = blocks.normalize_skip_attention(skip_attention)
    inputs = keras.Input(tuple(input_shape), name="image")
    x, skips = blocks.cnn_encoder(inputs, width, bn_momentum, dropout)
    bottleneck = blocks.unet_bottleneck(x, blocks.encoder_filters(width)[4], bn_momentum, dropout)
    x = blocks.decoder(bottleneck, skips, width, bn_momentum, skip_attention=attention)
    outputs = blocks.segmentation_heads(x, bottleneck, num_classes, dual_output)
    return keras.Model(inputs, outputs, name=blocks.model_name("unet", attention, dual_output))
