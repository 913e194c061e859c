"""The two custom Keras layers of the model zoo; everything else is built from stock layers.

Both are registered under the package name ``"spine"`` with a complete ``get_config``, so a
``.keras`` file reloads in a fresh process after ``import spine.models`` (with ``safe_mode`` on:
the zoo uses no ``Lambda`` layer).

- ``PositionalEmbedding``: TransUNet's learned position embedding, added to a ``(B, N, D)`` token
  sequence. Its table is sized from the input shape when the layer is built, so the same code
  serves a 128x128 input (8x8 = 64 tokens) and a 64x64 one (4x4 = 16 tokens).
- ``ChannelPool``: the mean and the max over the channel axis, concatenated to 2 channels, the
  input of the spatial attention module (SAM, and the spatial half of CBAM).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="spine")
class PositionalEmbedding(keras.layers.Layer):
    """Add a learned ``(N, D)`` position table to tokens ``(B, N, D)``; ``N, D`` from the input shape."""

    def __init__(self, stddev: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)

    def build(self, input_shape):
        num_tokens, dim = int(input_shape[-2]), int(input_shape[-1])
        self.embedding = self.add_weight(
            name="embedding",
            shape=(num_tokens, dim),
            initializer=keras.initializers.TruncatedNormal(stddev=self.stddev),
            trainable=True,
        )

    def call(self, inputs):
        return inputs + ops.expand_dims(ops.cast(self.embedding, inputs.dtype), 0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="spine")
class ChannelPool(keras.layers.Layer):
    """``(B, H, W, C) -> (B, H, W, 2)``: the channel mean and the channel max, in that order."""

    def call(self, inputs):
        return ops.concatenate(
            [ops.mean(inputs, axis=-1, keepdims=True), ops.max(inputs, axis=-1, keepdims=True)],
            axis=-1,
        )

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)

    def get_config(self):
        return super().get_config()
