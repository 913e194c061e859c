"""Training and evaluation of one run, resumable, recorded in the results store.

Protocol: split by patient (fixed 80/20 train/test from the profile's ``split_seed``; 20 % of
the training patients for validation, drawn with the run's seed); train with Adam on the
task's loss (both heads for dual-output models); after each epoch score the validation
patients and keep the weights with the best validation Dice (binary: foreground Dice;
multiclass: mean Dice over vertebra, disc and canal); touch the test patients once, at the end,
with those weights.

Determinism: the run's seed fixes initialisation (``keras.utils.set_random_seed``), the
training order (a permutation per epoch from ``(seed, epoch)``), the augmentation draws and
the validation patients; TensorFlow's op determinism is switched on. On one machine and one
TensorFlow build the same seed and data give the same metrics; across CPUs, thread counts or
TensorFlow versions, floating-point reductions may differ in the last bits and runs drift apart.
Resuming restores the model, the optimizer and the epoch counter from the last checkpoint.
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from spine import losses, metrics, stats
from spine.data import labels, load_dataset, make_split, save_split, subset_mask
from spine.data.io import atomic_path
from spine.errors import DataError
from spine.data.preprocess import BOTTLENECK_FACTOR
from spine.inference import predict_labels
from spine.models import build_model, has_dual_output
from spine.training import augment as augmentation
from spine.training import store as results
from spine.training.config import RunConfig, resolve_profile

# Keras' loops warn about re-tracing and AutoGraph about conversions: noise for users (and for
# the book's pages, where they would appear between the figures).
tf.get_logger().setLevel("ERROR")
tf.autograph.set_verbosity(0)

CI_KEYS = ("dice", "iou", "miou", "hd95", "assd", "hd95_mm", "assd_mm")


def make_config(model: str, loss: str, task: str = "binary", data="phantom", profile: str = "cpu",
                seed: int = 0, augment: bool = False, overrides: dict | None = None) -> RunConfig:
    """Resolve a run request; the data source is prepared (or read from the cache) to identify it."""
    from spine.models import MODEL_NAMES  # validated here, so a typo fails before any work

    settings = resolve_profile(profile, overrides)
    labels.check_task(task)
    if model not in MODEL_NAMES:
        from spine.errors import ConfigError

        raise ConfigError(f"unknown model {model!r}; valid: {', '.join(MODEL_NAMES)}")
    losses.get_loss(loss, task)
    return RunConfig(model=model, loss=loss, task=task, data=str(data), data_id=_data_id(str(data), settings["size"]),
                     profile=profile, settings=settings, seed=int(seed), augment=bool(augment))


@functools.lru_cache(maxsize=32)
def _data_id(data: str, size: int) -> str:
    return load_dataset(data, size=size).data_id


def split_data(config: RunConfig, split_folder: Path | None = None) -> dict:
    """The run's train / val / test slices (and the split manifest, saved if a folder is given)."""
    settings = config.settings
    dataset = load_dataset(config.data, size=settings["size"])
    split = make_split(dataset.patients, seed=settings["split_seed"], val_seed=config.seed)
    if split_folder is not None:
        save_split(split, Path(split_folder) / "split.csv")
    subsets = {name: dataset.select(subset_mask(dataset.patients, split, name)) for name in ("train", "val", "test")}
    per_train = settings["train_slices_per_patient"]
    if per_train:
        subsets["train"] = subsets["train"].central(per_train)
    if settings["max_train_images"]:
        subsets["train"] = subsets["train"].select(np.arange(min(settings["max_train_images"], len(subsets["train"]))))
    for name in ("val", "test"):
        subsets[name] = subsets[name].central(settings["eval_slices_per_patient"])
    return subsets


def compile_model(config: RunConfig) -> keras.Model:
    settings = config.settings
    model = build_model(config.model, input_shape=(settings["size"], settings["size"], 1),
                        num_classes=labels.num_classes(config.task), width=settings["width"],
                        bn_momentum=settings["bn_momentum"], dropout=settings["dropout"])
    if has_dual_output(model):
        loss, weights = losses.dual_output_losses(config.loss, config.task, aux_weight=settings["aux_weight"])
    else:
        loss, weights = {"mask": losses.get_loss(config.loss, config.task)}, None
    model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"]), loss=loss, loss_weights=weights)
    return model


def epoch_dataset(subset, task: str, batch_size: int, seed: int, epoch: int, augment: bool,
                  dual: bool) -> tf.data.Dataset:
    """One epoch of training batches, in an order (and augmentation draws) fixed by (seed, epoch)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(subset))
    classes = subset.labels(task)[order][..., None].astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((subset.images[order], classes)).batch(batch_size)
    count = labels.num_classes(task)
    pipeline = augmentation.augmenter(seed * 1000 + epoch) if augment else None

    def targets(images, masks):
        if pipeline is not None:
            out = pipeline({"images": images, "segmentation_masks": masks}, training=True)
            images, masks = out["images"], out["segmentation_masks"]
        hot = tf.one_hot(tf.cast(masks[..., 0], tf.int32), count)
        wanted = {"mask": hot}
        if dual:
            wanted["aux"] = tf.nn.avg_pool2d(hot, BOTTLENECK_FACTOR, BOTTLENECK_FACTOR, "VALID")
        return images, wanted

    return data.map(targets).prefetch(2)


def reseed_layers(model: keras.Model, seed: int, epoch: int) -> None:
    """Set every random layer's generator (dropout, ...) from (seed, epoch).

    ``.keras`` files do not restore these states in a way that continues the same sequence, so
    each epoch starts from a state of its own: a resumed run draws what an uninterrupted one did.
    """
    states = [v for v in model.variables if v.name == "seed_generator_state"]
    draws = np.random.default_rng([seed, epoch, 1]).integers(1, 2**30, size=len(states))
    for variable, draw in zip(states, draws):
        variable.assign(np.array([draw, 0]).astype(variable.dtype))


def score(model: keras.Model, subset, task: str) -> tuple[pd.DataFrame, dict]:
    """Per-image metrics and their summary on a subset (spacing in mm where the data has it)."""
    predictions = predict_labels(model, subset.images)
    spacings = [None if np.isnan(s).any() else tuple(s) for s in subset.spacing]
    return metrics.evaluate(subset.labels(task), predictions, labels.num_classes(task),
                            spacings=spacings, names=subset.case_ids)


class _Progress(keras.callbacks.Callback):
    """A tqdm bar per epoch with the running loss, then the validation Dice."""

    def __init__(self, epochs: int, steps: int, enabled: bool):
        super().__init__()
        self.epochs, self.steps, self.enabled, self.bar = epochs, steps, enabled, None

    def on_epoch_begin(self, epoch, logs=None):
        self.bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}", disable=not self.enabled,
                        leave=True, dynamic_ncols=True)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.4f}")

    def finish(self, loss: float, val_dice: float):
        if self.bar is None:  # not attached (quiet run)
            return
        self.bar.set_postfix(loss=f"{loss:.4f}", val_dice=f"{val_dice:.4f}")
        self.bar.close()


def _train_epochs(model, config, subsets, folder: Path, start_epoch: int, state: dict, verbose: bool):
    settings = config.settings
    dual = has_dual_output(model)
    steps = int(np.ceil(len(subsets["train"]) / settings["batch_size"]))
    progress = _Progress(settings["epochs"], steps, verbose)
    for epoch in range(start_epoch, settings["epochs"]):
        data = epoch_dataset(subsets["train"], config.task, settings["batch_size"], config.seed, epoch,
                             config.augment, dual)
        reseed_layers(model, config.seed, epoch)
        started = time.perf_counter()
        # a per-batch callback makes Keras wait for every step's logs, so the bar only when shown
        history = model.fit(data, epochs=epoch + 1, initial_epoch=epoch, verbose=0, shuffle=False,
                            callbacks=[progress] if verbose else [])
        _, summary = score(model, subsets["val"], config.task)
        val_dice = summary["per_image"]["dice"]
        row = {"epoch": epoch + 1, **{k: v[-1] for k, v in history.history.items()}, "val_dice": val_dice,
               "val_miou": summary["per_image"]["miou"], "seconds": round(time.perf_counter() - started, 2)}
        progress.finish(row["loss"], val_dice)
        if val_dice > state["best_val_dice"]:
            state.update(best_val_dice=val_dice, best_epoch=epoch + 1)
            save_model(model, folder / "best.keras")
        state["history"].append(row)
        state["epochs_done"] = epoch + 1
        state["seconds"] += time.perf_counter() - started
        save_model(model, folder / "last.keras")
        results.write_json(folder / "state.json", state)  # after the checkpoint: state never runs ahead


def save_model(model: keras.Model, path: Path) -> None:
    """A checkpoint written whole or not at all: an interrupted save leaves the previous one."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def _load_checkpoint(path: Path) -> keras.Model:
    try:
        return keras.saving.load_model(path)
    except Exception as exc:  # Keras raises several kinds for a damaged archive
        raise DataError(path, "damaged checkpoint, cannot resume; train again with --restart "
                              "(restart=True) to start this run over") from exc


def train(config: RunConfig, store=results.DEFAULT_STORE, *, force: bool = False, resume: bool = True,
          verbose: bool = True) -> results.Record:
    """Train, select on validation, test once, and record; an existing record is returned as is."""
    store = results.check_writable(store)
    existing = results.find_record(store, config)
    if existing is not None and not force:
        return existing
    folder = results.run_dir(store, config)
    if force or not resume:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    results.write_json(folder / "config.json", config.to_dict())
    subsets = split_data(config, folder)
    state_path = folder / "state.json"
    tf.config.experimental.enable_op_determinism()
    if state_path.is_file() and (folder / "last.keras").is_file():
        # The checkpoint carries the optimizer and the layers' random-generator states.
        state = results.read_json(state_path)
        model = _load_checkpoint(folder / "last.keras")
    else:
        keras.utils.set_random_seed(config.seed)
        state = {"epochs_done": 0, "best_val_dice": -1.0, "best_epoch": 0, "history": [], "seconds": 0.0}
        model = compile_model(config)
    _train_epochs(model, config, subsets, folder, state["epochs_done"], state, verbose)
    return _finish(config, folder, subsets, state)


def _finish(config, folder: Path, subsets, state: dict) -> results.Record:
    started = time.perf_counter()
    model = keras.saving.load_model(folder / "best.keras")
    _, val_summary = score(model, subsets["val"], config.task)
    per_image, test_summary = score(model, subsets["test"], config.task)
    intervals = {key: stats.bootstrap_ci(per_image[key].to_numpy(), seed=config.seed)
                 for key in CI_KEYS if key in per_image}
    payload = {
        "selected_epoch": state["best_epoch"],
        "selection": "best validation Dice (binary: foreground; multiclass: mean over vertebra, disc, canal)",
        "subsets": {name: {"images": len(s), "patients": len(set(s.patients))} for name, s in subsets.items()},
        "val": val_summary,
        "test": test_summary,
        "test_ci95": {k: dict(zip(("estimate", "low", "high"), map(float, v))) for k, v in intervals.items()},
        "conventions": metrics.__doc__.split("Conventions (quoted by the book):")[-1].strip(),
    }
    per_image.to_csv(folder / "per_image.csv.tmp", index=False)
    (folder / "per_image.csv.tmp").replace(folder / "per_image.csv")
    pd.DataFrame(state["history"]).to_csv(folder / "history.csv.tmp", index=False)
    (folder / "history.csv.tmp").replace(folder / "history.csv")
    results.write_json(folder / "environment.json", results.environment(state["seconds"] + time.perf_counter() - started))
    (folder / "best.keras").replace(folder / "model.keras")
    for leftover in ("last.keras", "state.json"):
        (folder / leftover).unlink(missing_ok=True)
    results.write_json(folder / "metrics.json", payload)  # last: its presence marks the run finished
    return results.load_record(folder)


def evaluate_run(path, data=None) -> tuple[pd.DataFrame, dict]:
    """Score a finished run's model: on its own test patients, or on every patient of ``data``.

    Another source is scored on all its patients (``eval_slices_per_patient`` slices each): it
    was never seen in training, so all of it is test data.
    """
    record = results.load_record(path)
    config = record.config
    model = keras.saving.load_model(record.model_path)
    if data is None:
        subset = split_data(config)["test"]
    else:
        subset = load_dataset(data, size=config.settings["size"]).central(config.settings["eval_slices_per_patient"])
    return score(model, subset, config.task)


def record_model(record: results.Record) -> keras.Model:
    """The run's selected model. Records are committed without their model files; then the run
    is trained again (same configuration and seed) into a scratch store in the cache, so the
    record itself is never rewritten."""
    if record.model_path.is_file():
        return keras.saving.load_model(record.model_path)
    from spine.data import cache_dir

    scratch = train(record.config, cache_dir() / "models", verbose=False)
    return keras.saving.load_model(scratch.model_path)
