"""Building blocks shared by every model of the zoo (Keras 3 functional API, stock layers only).

Each block is a function ``block(x, ..., name=...)`` that returns a tensor; ``name`` prefixes the
names of its layers (``enc2_conv1``, ``enc2_bn1``, ``enc2_relu1``, ...), so layers are easy to find
(Grad-CAM, inspection) and names never collide.

Conventions, reverse-engineered from the study's parameter counts (Table 8, 128x128x1 input,
2 classes, width 64); see ``spine.models`` for the per-model accounting:

- Every convolution has a bias, also when a BatchNormalization follows (the counts include the
  biases). Every BatchNormalization takes ``bn_momentum`` from the builder (study default 0.99,
  0.9 for short CPU runs). Order inside a conv block: conv -> BN -> ReLU.
- Upsampling is a learned 2x2 stride-2 ``Conv2DTranspose`` with ``filters`` outputs, without BN
  and without activation. (The counts need a learned 2x2 kernel: ``UpSampling2D`` + a 2x2 conv
  has the same count, ``UpSampling2D`` + a 3x3 conv or parameter-free upsampling does not fit.)
- Filter counts scale with ``width / 64`` (``scaled``), the Inception branches included, so every
  channel ratio of the study is kept at any width.
- Skip attention (SAM, CBAM, SE) acts on the encoder feature of a skip connection, before it is
  concatenated in the decoder. SE and CBAM's channel MLP use a reduction ratio of 16 (at least 1
  hidden unit); SAM and CBAM's spatial part use a 7x7 convolution over the channel mean and max
  (Woo et al., 2018; Hu et al., 2018). The study gives no counts for them.
- The attention gate (Oktay et al., 2018) uses the upsampled decoder feature as the gating signal,
  1x1 convolutions with biases to ``inter = filters`` channels (F_int = F_l), no BatchNorm, and a
  1-channel sigmoid coefficient: that is what the Attention U-Net count (Table 8) implies.
"""

from __future__ import annotations

from keras import layers

from spine.errors import ConfigError
from spine.models.layers import ChannelPool

#: The study's filter counts at width 64: encoder blocks 1-4 and the bottleneck.
BASE_FILTERS = (64, 128, 256, 512, 1024)
#: The Inception block's branches at width 64: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; pool -> 1x1.
INCEPTION_FILTERS = {"b1": 64, "b3_reduce": 96, "b3": 128, "b5_reduce": 16, "b5": 32, "pool": 32}
SKIP_ATTENTION_KINDS = ("sam", "cbam", "se")
_SKIP_ATTENTION_ALIASES = {"sam": "sam", "cbam": "cbam", "se": "se", "se block": "se", "se_block": "se"}
REDUCTION = 16
SPATIAL_KERNEL = 7


def scaled(filters: int, width: int) -> int:
    """``filters`` (a count at the study's width 64) at base width ``width``; at least 1."""
    return max(1, int(round(filters * width / 64)))


def encoder_filters(width: int) -> tuple[int, ...]:
    """Filters of encoder blocks 1-4 and of the bottleneck at base width ``width``."""
    return tuple(scaled(f, width) for f in BASE_FILTERS)


def check_config(input_shape, num_classes: int, width: int, dropout: float) -> tuple[int, int, int]:
    """Validate a builder's common arguments; return ``(H, W, C)``."""
    if len(tuple(input_shape)) != 3:
        raise ConfigError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    height, wide, channels = (int(v) for v in input_shape)
    if height <= 0 or wide <= 0 or height % 16 or wide % 16:
        raise ConfigError(
            f"input height and width must be positive multiples of 16 (four 2x2 poolings), got {input_shape!r}"
        )
    if channels <= 0:
        raise ConfigError(f"input channels must be positive, got {input_shape!r}")
    if int(num_classes) < 2:
        raise ConfigError(f"num_classes must be at least 2 (softmax head; binary = 2), got {num_classes!r}")
    if int(width) < 1:
        raise ConfigError(f"width must be a positive number of base filters, got {width!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
    return height, wide, channels


def normalize_skip_attention(kind) -> str | None:
    """``None``, ``"sam"``, ``"cbam"`` or ``"se"`` from a user spelling (``"SE block"``, ``"CBAM"``...)."""
    if kind is None:
        return None
    key = str(kind).strip().lower()
    if key in ("", "none"):
        return None
    if key not in _SKIP_ATTENTION_ALIASES:
        raise ConfigError(
            f"unknown skip attention {kind!r}; valid: None, 'sam', 'cbam', 'se' (or 'SE block')"
        )
    return _SKIP_ATTENTION_ALIASES[key]


def model_name(base: str, attention: str | None, dual_output: bool) -> str:
    """A builder's Keras model name: ``base``, then the skip attention and ``_dual`` if any."""
    return base + (f"_{attention}" if attention else "") + ("_dual" if dual_output else "")


# --------------------------------------------------------------------------- convolutions


def conv_bn_relu(x, filters: int, kernel_size: int, bn_momentum: float, name: str, out_name: str | None = None):
    """Conv (same padding, bias) -> BatchNorm -> ReLU; the ReLU is named ``out_name`` if given."""
    x = layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=out_name or f"{name}_relu")(x)


def conv_block(x, filters: int, bn_momentum: float, name: str, out_name: str | None = None):
    """Two 3x3 conv -> BN -> ReLU (the U-Net block); the last ReLU is named ``out_name`` if given."""
    x = conv_bn_relu(x, filters, 3, bn_momentum, name=f"{name}_1")
    return conv_bn_relu(x, filters, 3, bn_momentum, name=f"{name}_2", out_name=out_name)


def unet_bottleneck(x, filters: int, bn_momentum: float, dropout: float, name: str = "bottleneck"):
    """The U-Net baseline's bottleneck: 3x3 conv -> ReLU, 3x3 conv -> ReLU, BatchNorm, dropout.

    A single BatchNorm (after the second ReLU), as the text puts it ("ReLU + BatchNorm + dropout")
    and as the U-Net count needs (4,864 BN channels = 1,920 encoder + 1,024 bottleneck + 1,920
    decoder). The second ReLU carries the fixed name ``name`` (the Grad-CAM layer).
    """
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_1_conv")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = layers.Activation("relu", name=name)(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    return maybe_dropout(x, dropout, name=f"{name}_dropout")


def residual_block(x, filters: int, bn_momentum: float, name: str, out_name: str | None = None):
    """ResUNet block: (3x3 conv -> BN -> ReLU -> 3x3 conv -> BN) + (1x1 conv -> BN), add, ReLU.

    Three BN layers of ``filters`` channels per block (two on the main path, one on the
    projection shortcut), which is what the ResUNet count needs (8,832 BN channels).
    """
    shortcut = layers.Conv2D(filters, 1, padding="same", name=f"{name}_shortcut_conv")(x)
    shortcut = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_shortcut_bn")(shortcut)
    y = conv_bn_relu(x, filters, 3, bn_momentum, name=f"{name}_1")
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(y)
    y = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_2_bn")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=out_name or f"{name}_relu")(y)


def inception_block(x, width: int, bn_momentum: float, name: str = "inception"):
    """The proposed model's first encoder block: four branches on the input, concatenated.

    At width 64: 1x1 conv 64 | 1x1 conv 96 -> 3x3 conv 128 | 1x1 conv 16 -> 5x5 conv 32 |
    3x3 max-pool (stride 1, same) -> 1x1 conv 32; 64 + 128 + 32 + 32 = 256 channels. Every conv
    is followed by BN and ReLU (6 BN layers, 368 channels, as the Proposed count needs). All
    branch widths scale with ``width / 64``.
    """
    f = {key: scaled(value, width) for key, value in INCEPTION_FILTERS.items()}
    b1 = conv_bn_relu(x, f["b1"], 1, bn_momentum, name=f"{name}_b1")
    b3 = conv_bn_relu(x, f["b3_reduce"], 1, bn_momentum, name=f"{name}_b3_reduce")
    b3 = conv_bn_relu(b3, f["b3"], 3, bn_momentum, name=f"{name}_b3")
    b5 = conv_bn_relu(x, f["b5_reduce"], 1, bn_momentum, name=f"{name}_b5_reduce")
    b5 = conv_bn_relu(b5, f["b5"], 5, bn_momentum, name=f"{name}_b5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = conv_bn_relu(bp, f["pool"], 1, bn_momentum, name=f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([b1, b3, b5, bp])


def maybe_dropout(x, rate: float, name: str):
    return layers.Dropout(rate, name=name)(x) if rate and rate > 0 else x


# --------------------------------------------------------------------------- encoder / decoder


def cnn_encoder(inputs, width: int, bn_momentum: float, dropout: float, block: str = "conv", first: str = "conv"):
    """Encoder blocks 1-4, each followed by a 2x2 max-pool; returns ``(pooled, skips)``.

    ``block`` is ``"conv"`` (U-Net block) or ``"residual"`` (ResUNet block); ``first="inception"``
    makes block 1 the Inception block (the proposed model). Dropout ``dropout`` acts on the output
    of block 4 (the deepest encoder block: its skip and its pooled output), as in the common
    Keras U-Net; the bottleneck adds its own.
    """
    filters = encoder_filters(width)
    skips = []
    x = inputs
    for index, n in enumerate(filters[:4], start=1):
        name = f"enc{index}"
        if index == 1 and first == "inception":
            x = inception_block(x, width, bn_momentum, name="inception")
        elif block == "residual":
            x = residual_block(x, n, bn_momentum, name=name)
        else:
            x = conv_block(x, n, bn_momentum, name=name)
        if index == 4:
            x = maybe_dropout(x, dropout, name=f"{name}_dropout")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return x, skips


def decoder_stage(x, skip, filters: int, bn_momentum: float, name: str, skip_attention: str | None = None,
                  gate: bool = False, residual: bool = False):
    """2x2 transposed conv up, optional skip attention / attention gate on the skip, concat, block."""
    up = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)
    if skip_attention is not None:
        skip = apply_skip_attention(skip, skip_attention, name=f"{name}_{skip_attention}")
    if gate:
        skip = attention_gate(skip, up, filters, name=f"{name}_gate")
    x = layers.Concatenate(name=f"{name}_concat")([up, skip])
    if residual:
        return residual_block(x, filters, bn_momentum, name=f"{name}_block")
    return conv_block(x, filters, bn_momentum, name=f"{name}_block")


def decoder(x, skips, width: int, bn_momentum: float, skip_attention: str | None = None,
            gate: bool = False, residual: bool = False):
    """Four decoder stages (filters 512, 256, 128, 64 at width 64) back to the input size."""
    filters = encoder_filters(width)[:4]
    for index in (4, 3, 2, 1):
        x = decoder_stage(x, skips[index - 1], filters[index - 1], bn_momentum, name=f"dec{index}",
                          skip_attention=skip_attention, gate=gate, residual=residual)
    return x


# --------------------------------------------------------------------------- attention modules


def attention_gate(x, g, inter: int, name: str):
    """Additive attention gate: ``x * sigmoid(psi(relu(W_x x + W_g g)))``, ``x`` and ``g`` same size."""
    theta = layers.Conv2D(inter, 1, name=f"{name}_theta_x")(x)
    phi = layers.Conv2D(inter, 1, name=f"{name}_phi_g")(g)
    f = layers.Activation("relu", name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta, phi]))
    alpha = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(f)
    return layers.Multiply(name=f"{name}_apply")([x, alpha])


def spatial_attention(x, name: str, kernel_size: int = SPATIAL_KERNEL):
    """SAM: ``x * sigmoid(conv7x7([mean_c(x), max_c(x)]))``, one weight per pixel."""
    pooled = ChannelPool(name=f"{name}_channel_pool")(x)
    weights = layers.Conv2D(1, kernel_size, padding="same", activation="sigmoid", name=f"{name}_conv")(pooled)
    return layers.Multiply(name=f"{name}_apply")([x, weights])


def channel_attention(x, name: str, reduction: int = REDUCTION):
    """CBAM's channel half: a shared 2-layer MLP on the global average and max pools, summed."""
    channels = int(x.shape[-1])
    hidden = max(1, channels // reduction)
    dense1 = layers.Dense(hidden, activation="relu", name=f"{name}_mlp1")
    dense2 = layers.Dense(channels, name=f"{name}_mlp2")
    avg = dense2(dense1(layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_avg")(x)))
    mx = dense2(dense1(layers.GlobalMaxPooling2D(keepdims=True, name=f"{name}_max")(x)))
    weights = layers.Activation("sigmoid", name=f"{name}_sigmoid")(layers.Add(name=f"{name}_add")([avg, mx]))
    return layers.Multiply(name=f"{name}_apply")([x, weights])


def cbam(x, name: str, reduction: int = REDUCTION, kernel_size: int = SPATIAL_KERNEL):
    """CBAM: channel attention, then spatial attention (Woo et al., 2018)."""
    x = channel_attention(x, name=f"{name}_channel", reduction=reduction)
    return spatial_attention(x, name=f"{name}_spatial", kernel_size=kernel_size)


def se_block(x, name: str, reduction: int = REDUCTION):
    """Squeeze-and-excitation: global average pool -> Dense(C/r, ReLU) -> Dense(C, sigmoid) -> scale."""
    channels = int(x.shape[-1])
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Dense(max(1, channels // reduction), activation="relu", name=f"{name}_fc1")(s)
    s = layers.Dense(channels, activation="sigmoid", name=f"{name}_fc2")(s)
    return layers.Multiply(name=f"{name}_apply")([x, s])


def apply_skip_attention(x, kind: str, name: str):
    kind = normalize_skip_attention(kind)
    if kind == "sam":
        return spatial_attention(x, name=name)
    if kind == "cbam":
        return cbam(x, name=name)
    if kind == "se":
        return se_block(x, name=name)
    return x


# --------------------------------------------------------------------------- Transformer


def transformer_block(tokens, num_heads: int, mlp_dim: int, dropout: float, name: str):
    """Pre-norm ViT encoder layer on ``(B, N, D)``: LN -> MHSA -> add; LN -> MLP (GELU) -> add."""
    dim = int(tokens.shape[-1])
    heads = max(1, min(num_heads, dim))
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln1")(tokens)
    y = layers.MultiHeadAttention(num_heads=heads, key_dim=max(1, dim // heads), dropout=dropout,
                                  name=f"{name}_mhsa")(y, y)
    tokens = layers.Add(name=f"{name}_add1")([tokens, y])
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln2")(tokens)
    y = layers.Dense(mlp_dim, activation="gelu", name=f"{name}_mlp1")(y)
    y = maybe_dropout(y, dropout, name=f"{name}_drop1")
    y = layers.Dense(dim, name=f"{name}_mlp2")(y)
    y = maybe_dropout(y, dropout, name=f"{name}_drop2")
    return layers.Add(name=f"{name}_add2")([tokens, y])


# --------------------------------------------------------------------------- heads


def segmentation_heads(x, bottleneck, num_classes: int, dual_output: bool) -> dict:
    """The outputs dict: ``mask`` (1x1 conv softmax at full size) and, if dual, ``aux`` (bottleneck)."""
    outputs = {"mask": layers.Conv2D(num_classes, 1, activation="softmax", dtype="float32", name="mask")(x)}
    if dual_output:
        outputs["aux"] = aux_head(bottleneck, num_classes)
    return outputs


def aux_head(bottleneck, num_classes: int):
    """The dual-output head: 1x1 conv + softmax on the bottleneck (H/16 x W/16), named ``aux``."""
    return layers.Conv2D(num_classes, 1, activation="softmax", dtype="float32", name="aux")(bottleneck)
