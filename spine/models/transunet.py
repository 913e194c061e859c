"""TransUNet (Chen et al., 2021), scaled to the study's size: CNN encoder + Transformer + CUP decoder.

- CNN encoder: the U-Net's encoder blocks 1-4 (two 3x3 conv -> BN -> ReLU, 64..512 filters, each
  followed by a 2x2 max-pool; dropout 0.5 after block 4), ending at H/16 x W/16 x 512.
- Tokens: a 1x1 conv "patch embedding" (1x1 patches of the H/16 feature map) to ``embed_dim``
  (512 at width 64), flattened to ``N = H/16 * W/16`` tokens (64 at 128x128, 16 at 64x64) plus a
  learned position embedding sized from the input shape (``PositionalEmbedding``).
- Transformer: ``num_layers`` pre-norm ViT layers (multi-head self-attention with ``num_heads``
  heads, MLP of ``mlp_ratio * embed_dim`` with GELU, dropout ``transformer_dropout``), a final
  LayerNorm, reshaped back to the H/16 grid.
- Bottleneck: 1x1 conv to 1,024 filters -> BN -> ReLU (named ``bottleneck``), TransUNet's
  "conv_more" bridge from the hidden size to the decoder.
- Cascaded upsampler: the U-Net decoder (2x2 stride-2 transposed conv, skip concatenation, two
  3x3 conv -> BN -> ReLU) and a 1x1 conv + softmax head ``mask``.

Sizing from the study's count (Table 8: 23,979,010 total, 23,969,282 trainable, 9,728
non-trainable). The non-trainable part fixes the BN channels at 4,864 = 1,920 (encoder) + 1,920
(decoder) + 1,024: one BN of 1,024 channels between the Transformer and the decoder; the
encoder and decoder then hold 16,872,834 parameters, leaving 7,086,720 for the embedding, the
Transformer and the bridge. No natural configuration hits that exactly; the defaults (hidden
512, 8 heads, MLP 2,048 = the usual 4x ratio, 2 layers, 1x1 bridge) give 7,126,528, i.e.
24,018,818 in total (+0.17 %) with the non-trainable count exact. (A 3x3 bridge with a single
1,024-MLP layer is as close but is a one-layer Transformer.) The original TransUNet's R50
encoder, 12 layers of 768 and bilinear upsampling would be far larger than the study's model.
"""

from __future__ import annotations

import keras
from keras import layers

from spine.errors import ConfigError
from spine.models import blocks
from spine.models.layers import PositionalEmbedding


def build_transunet(input_shape=(128, 128, 1), num_classes: int = 2, width: int = 64, dual_output: bool = False,
                    skip_attention=None, dropout: float = 0.5, bn_momentum: float = 0.99, num_layers: int = 2,
                    num_heads: int = 8, mlp_ratio: int = 4, embed_dim: int | None = None,
                    transformer_dropout: float = 0.1) -> keras.Model:
    """The TransUNet baseline; outputs ``{"mask"}`` (+ ``"aux"`` if ``dual_output``).

    ``embed_dim`` defaults to ``8 * width`` (512 at width 64, the encoder's last width).
    """
    height, wide, _ = blocks.check_config(input_shape, num_classes, width, dropout)
    attention = blocks.normalize_skip_attention(skip_attention)
    if int(num_layers) < 1 or int(num_heads) < 1 or int(mlp_ratio) < 1:
        raise ConfigError("num_layers, num_heads and mlp_ratio must be positive integers")
    dim = int(embed_dim) if embed_dim is not None else blocks.scaled(512, width)
    grid_h, grid_w = height // 16, wide // 16

    inputs = keras.Input(tuple(input_shape), name="image")
    x, skips = blocks.cnn_encoder(inputs, width, bn_momentum, dropout)
    tokens = layers.Conv2D(dim, 1, name="patch_embed")(x)
    tokens = layers.Reshape((grid_h * grid_w, dim), name="tokens")(tokens)
    tokens = PositionalEmbedding(name="pos_embed")(tokens)
    tokens = blocks.maybe_dropout(tokens, transformer_dropout, name="embed_dropout")
    for index in range(1, int(num_layers) + 1):
        tokens = blocks.transformer_block(tokens, int(num_heads), int(mlp_ratio) * dim, transformer_dropout,
                                          name=f"transformer{index}")
    tokens = layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(tokens)
    x = layers.Reshape((grid_h, grid_w, dim), name="token_grid")(tokens)
    bottleneck = blocks.conv_bn_relu(x, blocks.encoder_filters(width)[4], 1, bn_momentum,
                                     name="bottleneck_bridge", out_name="bottleneck")
    x = blocks.decoder(bottleneck, skips, width, bn_momentum, skip_attention=attention)
    outputs = blocks.segmentation_heads(x, bottleneck, num_classes, dual_output)
    return keras.Model(inputs, outputs, name=blocks.model_name("transunet", attention, dual_output))
