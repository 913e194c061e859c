"""Seg-Grad-CAM: where in the image a segmentation network finds the evidence for a class.

Grad-CAM (Selvaraju et al., 2017) adapted to segmentation by Vinogradova et al. (2020):

- **Score.** For class ``c`` and a set of pixels ``M``, the score is
  ``y^c = sum_{(u,v) in M} z^c_{uv}``, where ``z^c`` is the class-``c`` output of the ``mask``
  head. With ``score="logit"`` (default, as in the paper) ``z^c`` is the pre-softmax logit,
  recomputed from the input of the head's final 1x1 convolution with that layer's own kernel and
  bias (the softmax probability saturates at 1 inside a confident prediction, so its gradient
  vanishes there); ``score="probability"`` uses the softmax probability instead.
- **Region ``M``.** By default the pixels the model *predicts* as class ``c`` (``argmax == c``):
  the map explains the model's own segmentation of ``c``. A user-given boolean mask (e.g. one
  vertebra, or the ground truth) restricts the score to those pixels: the map then explains why
  the model scores class ``c`` *there*. An empty region (a user mask with no pixels, or a class
  the model predicts nowhere) makes the score identically zero, so the map is all zeros.
- **Weights and map.** With ``A^k`` the activations (channel ``k``) of a target layer,
  ``alpha_k = mean_{i,j} d y^c / d A^k_{ij}`` (spatial mean of the gradients) and
  ``L^c = ReLU(sum_k alpha_k A^k)``, computed at the layer's resolution, bilinearly upsampled to
  the input size and divided by its maximum, so it lies in ``[0, 1]`` (0 = no positive
  evidence). A map that is zero everywhere (no positive evidence, or an empty region) is
  returned as zeros, never NaN.
- **Target layer.** Default: the bottleneck (``spine.models.bottleneck_layer_name``, the layer
  named ``"bottleneck"``), the most abstract features of every model of the zoo and the very
  tensor the auxiliary head of the dual-output models (``"Proposed"``) supervises with the
  coarse H/16 x W/16 mask, so its map shows what that deep supervision made the network look at.
  It is coarse (H/16: 8 x 8 at 128 x 128, 4 x 4 at 64 x 64); any layer that lies on the path to
  the ``mask`` head can be chosen by name for a finer map, e.g. a decoder stage's output
  (``spine.models.decoder_layer_name``: ``"dec3_block_2_relu"``, H/4, in the U-Net family).

Sanity checks and measures:

- :func:`randomized_copy` gives the model with the same architecture and re-initialised weights:
  the model-randomisation test of Adebayo et al. (2018). A saliency method that explains the
  model must give clearly different maps for the trained and the random network (a map that
  survives randomisation is an edge detector of the input, not an explanation).
- :func:`concentration` is the energy-based pointing game (Wang et al., 2020, Score-CAM): the
  fraction of the map's mass inside a region. A uniform map scores the region's area fraction, so
  a map that "points at" the target structure scores clearly above it.
- :func:`gradcam_maps` computes the maps of a model and of its randomised copy at chosen layers,
  and :func:`gradcam_sanity` puts both checks in numbers, one row per layer: concentration
  against chance for each model, and the rank correlation between their maps.
- :func:`overlay` draws a map over the grey MRI slice, optionally with a mask's contour.

``tests/test_explain.py`` runs both checks on a small U-Net trained on the phantom.
"""

from __future__ import annotations

import copy

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from spine.errors import ConfigError

SCORES = ("logit", "probability")
MASK_OUTPUT = "mask"
BATCH_SIZE = 16


# --------------------------------------------------------------------------- Grad-CAM


def grad_cam(model: keras.Model, image, class_index: int, region=None, layer: str | None = None,
             score: str = "logit") -> np.ndarray:
    """The Seg-Grad-CAM map of ``class_index`` for one image.

    ``image`` is ``(H, W, 1)`` or ``(H, W)``; ``region`` an optional boolean ``(H, W)`` mask of the
    pixels whose class score is explained (default: the pixels predicted as ``class_index``; an
    empty region gives zeros); ``layer`` the target layer's name (default: the bottleneck);
    ``score`` ``"logit"`` or ``"probability"`` (module docstring). Returns ``(H, W)`` float32 in
    ``[0, 1]``, all zeros when there is no positive evidence.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        raise ValueError(f"grad_cam takes one image (H, W) or (H, W, 1), got shape {image.shape}")
    regions = None if region is None else np.asarray(region)[None]
    return grad_cam_batch(model, image[None], class_index, regions=regions, layer=layer, score=score)[0]


def grad_cam_batch(model: keras.Model, images, class_index: int, regions=None, layer: str | None = None,
                   score: str = "logit", batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Seg-Grad-CAM maps for ``images`` ``(N, H, W, 1)`` or ``(N, H, W)``: ``(N, H, W)`` float32 in [0, 1].

    ``regions``: ``None`` (each image's predicted region of ``class_index``), a boolean
    ``(N, H, W)`` array (one region per image) or ``(H, W)`` (the same region for all). Images are
    independent (the model runs in inference mode), so one gradient of the summed scores gives
    every image's own gradients.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C), got shape {images.shape}")
    count, height, width = images.shape[:3]
    if regions is not None:
        regions = np.asarray(regions).astype(bool)
        if regions.shape == (height, width):
            regions = np.broadcast_to(regions, (count, height, width))
        if regions.shape != (count, height, width):
            raise ValueError(f"regions must be (N, H, W) = {(count, height, width)} or (H, W), "
                             f"got shape {regions.shape}")
    if score not in SCORES:
        raise ConfigError(f"unknown Grad-CAM score {score!r}; valid: {', '.join(repr(s) for s in SCORES)}")
    explainer, layer = _explainer(model, layer)
    num_classes = int(explainer.outputs[-1].shape[-1])
    if not 0 <= int(class_index) < num_classes:
        raise ConfigError(f"class_index must be in [0, {num_classes - 1}], got {class_index!r}")
    head = model.get_layer(MASK_OUTPUT)
    maps = np.zeros((count, height, width), dtype=np.float32)
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        batch_regions = None if regions is None else regions[start:stop]
        maps[start:stop] = _cam(explainer, layer, head, images[start:stop], int(class_index), batch_regions, score)
    return maps


def _explainer(model: keras.Model, layer: str | None) -> tuple[keras.Model, str]:
    """``(image -> [A (target layer), input of the mask head, mask], layer name)``, sharing the weights."""
    if layer is None:
        from spine.models import bottleneck_layer_name

        layer = bottleneck_layer_name(model)
    try:
        target = model.get_layer(layer)
        head = model.get_layer(MASK_OUTPUT)
    except ValueError as error:
        raise ConfigError(f"model {model.name!r} has no layer {error}") from error
    if len(target.output.shape) != 4:
        raise ConfigError(f"layer {layer!r} gives {tuple(target.output.shape)}; Grad-CAM needs a "
                          "(batch, height, width, channels) feature map")
    if not isinstance(head, keras.layers.Conv2D):
        raise ConfigError(f"the {MASK_OUTPUT!r} head of {model.name!r} is a {type(head).__name__}, not a Conv2D")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # the structure the model expects
    explainer = keras.Model(inputs, [target.output, head.input, head.output], name=f"{model.name}_gradcam")
    return explainer, layer


def _cam(explainer, layer: str, head, images, class_index: int, regions, score: str) -> np.ndarray:
    height, width = images.shape[1:3]
    inputs = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        activations, features, probabilities = explainer(inputs, training=False)
        tape.watch(activations)
        if score == "logit":
            outputs = keras.ops.conv(features, head.kernel, strides=head.strides, padding=head.padding,
                                     dilation_rate=head.dilation_rate)
            if head.use_bias:
                outputs = outputs + head.bias
        else:
            outputs = probabilities
        if regions is None:
            inside = tf.cast(tf.argmax(probabilities, axis=-1) == class_index, outputs.dtype)
        else:
            inside = tf.convert_to_tensor(regions, dtype=outputs.dtype)
        total = tf.reduce_sum(outputs[..., class_index] * tf.stop_gradient(inside))
    gradients = tape.gradient(total, activations)
    if gradients is None:
        raise ConfigError(f"the target layer {layer!r} does not lead to the {MASK_OUTPUT!r} output")
    alpha = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # (B, 1, 1, K)
    cam = tf.nn.relu(tf.reduce_sum(alpha * activations, axis=-1, keepdims=True))  # (B, h, w, 1)
    if cam.shape[1:3] != (height, width):
        cam = tf.image.resize(cam, (height, width), method="bilinear")
    return normalize(cam.numpy()[..., 0])


def normalize(maps) -> np.ndarray:
    """Each map (last two axes) divided by its maximum, into ``[0, 1]``; all-zero (or non-finite) -> zeros."""
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    maps = np.maximum(maps, 0.0)
    peak = maps.max(axis=(-2, -1), keepdims=True)
    scale = np.where(peak > 0, peak, 1.0)
    return np.clip(maps / scale, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- measures, sanity checks


def concentration(cam, region) -> float:
    """Fraction of the map's mass inside ``region``: ``sum(cam * region) / sum(cam)``.

    The energy-based pointing game (Wang et al., 2020). ``cam`` and ``region`` have the same
    shape (one map, or a stack pooled together); a uniform map scores the region's area
    fraction, so that is the chance level. A map with no mass (all zeros) points nowhere: NaN.
    """
    cam = np.asarray(cam, dtype=np.float64)
    region = np.asarray(region).astype(bool)
    if cam.shape != region.shape:
        raise ValueError(f"cam {cam.shape} and region {region.shape} must have the same shape")
    cam = np.maximum(np.nan_to_num(cam), 0.0)
    total = cam.sum()
    if total <= 0:
        return float("nan")
    return float(cam[region].sum() / total)


def randomized_copy(model: keras.Model, seed: int = 0) -> keras.Model:
    """The same architecture with freshly initialised weights (Adebayo et al., 2018).

    ``keras.models.clone_model`` rebuilds every layer from its config, so weights come from the
    layers' initialisers (BatchNorm statistics back to 0 / 1); each random initialiser gets its
    own seed derived from ``seed``, so the copy is reproducible without touching the global RNG.
    The trained ``model`` is not modified. Its Grad-CAM maps should differ clearly from the
    trained model's: the model-randomisation sanity check.
    """
    counter = iter(range(1, 1 << 30))

    def clone(layer):
        config = layer.get_config()
        for key, value in list(config.items()):
            if (key.endswith("_initializer") and isinstance(value, dict)
                    and isinstance(value.get("config"), dict) and "seed" in value["config"]):
                value = copy.deepcopy(value)
                value["config"]["seed"] = int(seed) * 100_003 + next(counter)
                config[key] = value
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def gradcam_maps(model: keras.Model, images, layers, class_index: int = 1, seed: int = 0) -> dict:
    """Seg-Grad-CAM maps of ``model`` and of its :func:`randomized_copy` (same architecture, fresh weights).

    Returns ``{"trained": {layer: maps}, "randomised": {layer: maps}}`` with maps ``(N, H, W)``
    in [0, 1] (:func:`grad_cam_batch`; region: each image's predicted ``class_index``).
    ``layers``: layer names, ``None`` meaning the bottleneck.
    """
    random = randomized_copy(model, seed=seed)
    return {kind: {layer: grad_cam_batch(net, images, class_index, layer=layer) for layer in layers}
            for kind, net in (("trained", model), ("randomised", random))}


def _rank_correlation(a, b) -> float:
    """Spearman's rho of two maps; 0 when either is constant (nothing in common to rank)."""
    from scipy import stats as sps

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(sps.spearmanr(a, b)[0])


def gradcam_sanity(maps: dict, regions) -> pd.DataFrame:
    """The two sanity checks of a Grad-CAM map, one row per layer of :func:`gradcam_maps`' output.

    ``regions``: boolean ``(N, H, W)``, the structure each map should point at (e.g. the reference
    foreground). Columns: ``concentration`` (mean over images of the fraction of the map's mass
    inside the region, :func:`concentration`; images whose map is all zero are left out and
    counted in ``empty maps``), ``chance`` (the mean area fraction of the region: what a
    uniform map scores), their ratio, the same concentration for the randomised model, and the
    mean Spearman rank correlation between the trained and the randomised model's maps (near 1:
    the map ignores the weights and explains nothing; near 0: it depends on what was learned).
    """
    regions = np.asarray(regions).astype(bool)
    chance = float(regions.mean(axis=(1, 2)).mean())
    rows = []
    for layer, trained in maps["trained"].items():
        random = maps["randomised"][layer]
        mine = np.array([concentration(c, r) for c, r in zip(trained, regions)])
        theirs = np.array([concentration(c, r) for c, r in zip(random, regions)])
        rho = np.array([_rank_correlation(a, b) for a, b in zip(trained, random)])
        mean = float(np.nanmean(mine)) if np.isfinite(mine).any() else np.nan
        rows.append({"layer": layer or "bottleneck", "images": len(regions), "empty maps": int(np.isnan(mine).sum()),
                     "concentration": mean, "chance": chance,
                     "concentration / chance": mean / chance if chance else np.nan,
                     "concentration (randomised)": float(np.nanmean(theirs)) if np.isfinite(theirs).any() else np.nan,
                     "Spearman ρ trained vs randomised": float(rho.mean()) if rho.size else np.nan})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- drawing


def overlay(ax, image, cam, alpha: float = 0.45, cmap: str = "jet", contour=None, title: str | None = None,
            contour_color: str = "white"):
    """Draw the grey slice ``image`` on ``ax``, the map ``cam`` over it, and optionally a mask's contour.

    ``image`` is ``(H, W)`` or ``(H, W, 1)``; ``cam`` ``(H, W)`` in [0, 1] (colour scale fixed to
    [0, 1], so maps are comparable across panels); ``contour`` a boolean ``(H, W)`` mask outlined
    at its border. Returns the heatmap's ``AxesImage`` (for ``fig.colorbar``).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image[..., 0]
    ax.imshow(image, cmap="gray", interpolation="nearest")
    heat = ax.imshow(np.asarray(cam, dtype=np.float32), cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0,
                     interpolation="bilinear")
    if contour is not None:
        mask = np.asarray(contour).astype(np.float32)
        if mask.any() and not mask.all():
            ax.contour(mask, levels=[0.5], colors=contour_color, linewidths=1.0)
    if title:
        ax.set_title(title)
    ax.set_axis_off()
    return heat


__all__ = ["SCORES", "concentration", "grad_cam", "grad_cam_batch", "gradcam_maps", "gradcam_sanity", "normalize",
           "overlay", "randomized_copy"]
