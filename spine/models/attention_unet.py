"""Attention U-Net (Oktay et al., 2018): the U-Net with an additive attention gate on each skip.

Each decoder stage upsamples (2x2 stride-2 transposed conv), gates the encoder skip with the
upsampled feature as the gating signal, concatenates and applies two 3x3 conv -> BN -> ReLU.
The gate: ``x * sigmoid(psi(relu(W_x x + W_g g)))`` with 1x1 convolutions (with biases) to
``F_int = F_l`` channels (the skip's channel count), no BatchNorm, and a 1-channel ``psi``.

This reproduces the study's count exactly (Table 8: 31,753,414 total, 31,741,638 trainable,
11,776 non-trainable):

- the four gates hold 699,204 parameters, which is ``F_int = F_l`` with gating from the
  upsampled feature (``F_g = F_l``) and no BN in the gates (F_int = F_l/2 gives half of it);
- 11,776 / 2 = 5,888 BN channels = BN after *every* conv of the encoder, the bottleneck (both
  convs, unlike the U-Net baseline's single bottleneck BN) and the decoder.

Dropout 0.5 after encoder block 4 and after the bottleneck, whose second ReLU is ``bottleneck``.
``skip_attention`` (SAM/CBAM/SE) is accepted as in the other builders (applied before the gate),
though the study does not combine them.
"""

from __future__ import annotations

import keras

from spine.models import blocks


def build_attention_unet(input_shape=(128, 128, 1), num_classes: int = 2, width: int = 64,
                         dual_output: bool = False, skip_attention=None, dropout: float = 0.5,
                         bn_momentum: float = 0.99) -> keras.Model:
    """The Attention U-Net baseline; outputs ``{"mask"}`` (+ ``"aux"`` if ``dual_output``)."""
    blocks.check_config(input_shape, num_classes, width, dropout)
    attention = blocks.normalize_skip_attention(skip_attention)
    inputs = keras.Input(tuple(input_shape), name="image")
    x, skips = blocks.cnn_encoder(inputs, width, bn_momentum, dropout)
    x = blocks.conv_block(x, blocks.encoder_filters(width)[4], bn_momentum, name="bottleneck_block",
                          out_name="bottleneck")
    bottleneck = blocks.maybe_dropout(x, dropout, name="bottleneck_dropout")
    x = blocks.decoder(bottleneck, skips, width, bn_momentum, skip_attention=attention, gate=True)
    outputs = blocks.segmentation_heads(x, bottleneck, num_classes, dual_output)
    return keras.Model(inputs, outputs, name=blocks.model_name("attention_unet", attention, dual_output))
