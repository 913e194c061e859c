"""The proposed model: a U-Net with an Inception first block and a dual output.

- Block 1 is the Inception block on the input (1x1 conv 64 | 1x1 96 -> 3x3 128 | 1x1 16 -> 5x5
  32 | 3x3 max-pool stride 1 -> 1x1 32; concatenated to 256 channels at full resolution), each
  conv followed by BN and ReLU. Its 256-channel output is the first skip, so the last decoder
  stage concatenates 64 + 256 = 320 channels.
- Blocks 2-4: two 3x3 conv -> BN -> ReLU with 128, 256, 512 filters, then a 2x2 max-pool;
  dropout 0.5 after block 4.
- Bottleneck: two 3x3 conv -> BN -> ReLU with 1,024 filters (second ReLU named ``bottleneck``),
  then dropout 0.5.
- Decoder: 2x2 stride-2 transposed conv, concatenation of the skip, two 3x3 conv -> BN -> ReLU;
  1x1 conv + softmax head ``mask``.
- Dual output (default on): a 1x1 conv + softmax head ``aux`` with ``num_classes`` filters on the
  bottleneck (8x8 at a 128x128 input), to be supervised by an 8x8 mask.

This reproduces the study's count exactly (Table 8: 31,475,396 total, 31,463,140 trainable,
12,256 non-trainable). 12,256 / 2 = 6,128 BN channels = 368 (BN after each of the Inception
block's six convs: 64 + 96 + 128 + 16 + 32 + 32) + 1,664 (blocks 2-4) + 2,048 (BN after both
bottleneck convs) + 1,920 (decoder); among the natural placements only this one fits. So, where
the text describes the same bottleneck for the U-Net and the proposed model, the counts say the
proposed model's bottleneck has two BN layers and the U-Net's one; each builder follows its count.

Ablations: ``dual_output=False`` is "U-Net + Inception module"; ``skip_attention`` puts SAM, CBAM
or SE on the four skips ("Proposed + SE block"...).
"""

from __future__ import annotations

import keras

from spine.models import blocks


def build_proposed(input_shape=(128, 128, 1), num_classes: int = 2, width: int = 64, dual_output: bool = True,
                   skip_attention=None, dropout: float = 0.5, bn_momentum: float = 0.99) -> keras.Model:
    """The proposed model; outputs ``{"mask", "aux"}`` (``{"mask"}`` with ``dual_output=False``)."""
    blocks.check_config(input_shape, num_classes, width, dropout)
    attention = blocks.normalize_skip_attention(skip_attention)
    inputs = keras.Input(tuple(input_shape), name="image")
    x, skips = blocks.cnn_encoder(inputs, width, bn_momentum, dropout, first="inception")
    x = blocks.conv_block(x, blocks.encoder_filters(width)[4], bn_momentum, name="bottleneck_block",
                          out_name="bottleneck")
    bottleneck = blocks.maybe_dropout(x, dropout, name="bottleneck_dropout")
    x = blocks.decoder(bottleneck, skips, width, bn_momentum, skip_attention=attention)
    outputs = blocks.segmentation_heads(x, bottleneck, num_classes, dual_output)
    base = "proposed" if dual_output else "unet_inception"
    return keras.Model(inputs, outputs, name=blocks.model_name(base, attention, False))
