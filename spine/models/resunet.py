"""ResUNet: the U-Net layout with residual blocks (conv-BN-ReLU-conv-BN + 1x1 conv-BN shortcut).

Every block (encoder blocks 1-4, the bottleneck and the four decoder stages) is a residual block
of two 3x3 convs with BN plus a projection shortcut (1x1 conv + BN), summed and passed through a
ReLU. Downsampling by 2x2 max-pool, upsampling by 2x2 stride-2 transposed conv, dropout 0.5
after encoder block 4 and after the bottleneck, a 1x1 conv + softmax head ``mask``.

This reproduces the study's count exactly (Table 8: 32,461,634 total, 32,443,970 trainable,
17,664 non-trainable): 17,664 / 2 = 8,832 BN channels = 3 BN layers per block x (64 + 128 + 256
+ 512 + 1,024 + 512 + 256 + 128 + 64); the 1x1 shortcuts add 1,395,648 parameters to the U-Net's
convolutions. The bottleneck block's final ReLU is named ``bottleneck``.
"""

from __future__ import annotations

import keras

from spine.models import blocks


def build_resunet(input_shape=(128, 128, 1), num_classes: int = 2, width: int = 64, dual_output: bool = False,
                  skip_attention=None, dropout: float = 0.5, bn_momentum: float = 0.99) -> keras.Model:
    """The ResUNet baseline; outputs ``{"mask"}`` (+ ``"aux"`` if ``dual_output``)."""
    blocks.check_config(input_shape, num_classes, width, dropout)
    attention = blocks.normalize_skip_attention(skip_attention)
    inputs = keras.Input(tuple(input_shape), name="image")
    x, skips = blocks.cnn_encoder(inputs, width, bn_momentum, dropout, block="residual")
    x = blocks.residual_block(x, blocks.encoder_filters(width)[4], bn_momentum, name="bottleneck_block",
                              out_name="bottleneck")
    bottleneck = blocks.maybe_dropout(x, dropout, name="bottleneck_dropout")
    x = blocks.decoder(bottleneck, skips, width, bn_momentum, skip_attention=attention, residual=True)
    outputs = blocks.segmentation_heads(x, bottleneck, num_classes, dual_output)
    return keras.Model(inputs, outputs, name=blocks.model_name("resunet", attention, dual_output))
