"""Training and evaluation of one run, resumable, recorded in the results store.

Protocol: split by patient (``folds`` >= 2: the run's ``fold`` of a cross-validation by patient
fixed by the profile's ``split_seed``; otherwise a fixed 80/20 train/test split); 20 % of the
training patients for validation, drawn with the run's seed. Train with Adam on the task's loss
(both heads for dual-output models), with the profile's learning-rate schedule and precision;
after each epoch score the validation patients (their ``eval_slices_per_patient`` central
slices, Dice only, averaged per patient first) and keep the weights with the best validation
Dice (binary: foreground Dice; multiclass: mean Dice over vertebra, disc and canal); touch the
test patients once, at the end, with those weights.

A record holds per-image test metrics (``per_image.csv``, with each image's patient and whether
it is the patient's central slice, the study's view), their per-patient means
(``per_patient.csv``), the test label maps (``predictions.npz``), and, once per fold in the
store, the test inputs and references those maps belong to (``inputs/``), so that figures and
scores can be redrawn from the store without the model.

Determinism: the run's seed fixes initialisation (``keras.utils.set_random_seed``), the
training order (a permutation per epoch from ``(seed, epoch)``), the augmentation draws and
the validation patients; TensorFlow's op determinism is switched on. On one machine and one
TensorFlow build the same seed and data give the same metrics; across CPUs, thread counts or
TensorFlow versions, floating-point reductions may differ in the last bits and runs drift apart.
Resuming restores the model, the optimizer and the epoch counter from the last checkpoint
(written every ``checkpoint_every`` epochs with the best weights so far, and at the end).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from spine import losses, metrics, stats, transfer
from spine.data import (concat, detect_layout, labels, load_dataset, load_split, make_folds, make_split, save_split,
                        subset_mask)
from spine.data.io import atomic_path
from spine.errors import ConfigError, DataError
from spine.data.preprocess import BOTTLENECK_FACTOR
from spine.inference import predict_labels
from spine.models import build_model, has_dual_output
from spine.training import augment as augmentation
from spine.training import device, robust
from spine.training.config import RunConfig, augment_mode, resolve_profile
from spine.training.store import (DEFAULT_STORE, Record, check_writable, environment, find_record, inputs_path,
                                  load_record, read_json, recorded_data_id_of, run_dir, write_json)

# Keras' loops warn about re-tracing and AutoGraph about conversions: noise for users (and for
# the book's pages, where they would appear between the figures).
tf.get_logger().setLevel("ERROR")
tf.autograph.set_verbosity(0)

log = logging.getLogger(__name__)

# A run of at most this many training steps in all (epochs x steps per epoch) runs eagerly: for a
# handful of steps, tracing the step into a graph costs more CPU than the graph saves (a 2-step
# smoke run took 4x less CPU eagerly, an 8-step one 1.7x less, and at 32 steps the graph won:
# benchmarks/eager_training.py). The losses agree to float rounding either way
# (tests/test_engine.py), and the choice follows from the config: one config trains one way.
EAGER_STEPS = 8


def make_config(model: str, loss: str, task: str = "binary", data="phantom", profile: str = "cpu",
                seed: int = 0, augment: bool | str = False, overrides: dict | None = None, fold: int = 0,
                data_id: str | None = None, partial=None, init: str | None = None) -> RunConfig:
    """Resolve a run request; the data source is prepared (or read from the cache) to identify it.

    ``partial``: a second training source with partial labels (a ``vertebral-bodies-t1t2`` folder,
    :mod:`spine.data.bodies`), split by patient into the same folds as ``data`` (fold
    ``partial_fold`` of them held out, the run's own fold unless set: so the exams can be
    cross-validated under one split of ``data``); its training
    patients' slices (every ``partial_stride``-th) join the training set, its validation and test
    exams get the body check (:func:`spine.transfer.body_check`) stored with the record.

    ``init``: the id of a finished run of the same network, task and width whose selected weights
    start this run (a fine-tuning; :func:`init_model_path` finds its model file).

    A known ``data_id`` (or a source named ``recorded:<data_id>``, see
    :func:`spine.training.store.recorded_source`) identifies the data without loading it: the
    configuration then finds the records of that data in a store (the run id depends on the data's
    content id, never on its path), although it cannot train."""
    from spine.models import MODEL_NAMES  # validated here, so a typo fails before any work

    settings = resolve_profile(profile, overrides, partial=partial is not None)
    labels.check_task(task)
    if model not in MODEL_NAMES:
        raise ConfigError(f"unknown model {model!r}; valid: {', '.join(MODEL_NAMES)}")
    losses.get_loss(loss, task)
    if not 0 <= fold < max(settings["folds"], 1):
        raise ConfigError(f"fold {fold} does not exist at profile {profile!r}: "
                          f"folds are 0..{max(settings['folds'], 1) - 1}")
    if settings.get("partial_fold") == fold:
        del settings["partial_fold"]  # the default, stored only where it differs
    if not 0 <= settings.get("partial_fold", fold) < max(settings["folds"], 1):
        raise ConfigError(f"profile field partial_fold={settings['partial_fold']}: folds are "
                          f"0..{max(settings['folds'], 1) - 1}")
    # the precision this machine trains in, not "auto": a float16 GPU run and a float32 CPU run are different runs
    settings["precision"] = device.resolve_precision(settings["precision"])
    if data_id is None:
        data_id = source_data_id(data, settings["size"])
    partial_id = None if partial is None else _partial_id(str(partial), settings["size"])
    return RunConfig(model=model, loss=loss, task=task, data=str(data), data_id=data_id,
                     profile=profile, settings=settings, seed=int(seed), augment=augment_mode(augment), fold=int(fold),
                     partial=None if partial is None else str(partial), partial_id=partial_id, init=init)


def source_data_id(data, size: int) -> str:
    """The content id of a data source prepared at ``size`` (a ``recorded:<data_id>`` source names it)."""
    return recorded_data_id_of(str(data)) or _data_id(str(data), size)


@functools.lru_cache(maxsize=32)
def _data_id(data: str, size: int) -> str:
    return load_dataset(data, size=size).data_id


def _partial_id(source: str, size: int) -> str:
    if detect_layout(source) != "bodies":
        raise DataError(source, "a partially labelled source is a folder of <exam>.nii.gz volumes with "
                                "<exam>_bodies.nii.gz masks (vertebral-bodies-t1t2)")
    return _data_id(source, size)


def init_model_path(store, run_id: str) -> Path:
    """The model file of a finished run: its record's, else the shipped file whose card names the run
    (records are committed without their model files; the shipped ones are those runs' models)."""
    from spine.inference import WEIGHTS

    path = Path(store) / run_id / "model.keras"
    if path.is_file():
        return path
    for card in sorted(WEIGHTS.glob("*.json")):
        if read_json(card).get("run_id") == run_id:
            return card.with_suffix(".keras")
    raise DataError(path, f"no model file of run {run_id} (in its record or shipped) to start from")


def _start_from(model: keras.Model, config: RunConfig, store) -> None:
    """Set the weights of ``config.init``'s model (the same architecture, else a clear error)."""
    path = init_model_path(store, config.init)
    weights = keras.saving.load_model(path, compile=False).get_weights()
    if [w.shape for w in weights] != [w.shape for w in model.get_weights()]:
        raise DataError(path, f"run {config.init} is not a {config.model} of this task and width: cannot start from it")
    model.set_weights(weights)


def init_config(store, run_id: str) -> RunConfig:
    """The configuration of the run a fine-tuning starts from: its record's, else the card of the
    shipped file made from it (:func:`init_model_path`)."""
    recorded = Path(store) / run_id / "config.json"
    if recorded.is_file():
        return RunConfig.from_dict(read_json(recorded))
    return RunConfig.from_dict(read_json(init_model_path(store, run_id).with_suffix(".json"))["config"])


def init_leaks(config: RunConfig, store) -> set[str]:
    """The patients (and exams) that ``config.init``'s run trained on and ``config`` validates or
    tests on. Each run draws its validation patients with its own seed, so a run of another seed
    has trained on some of them: a fine-tuning that starts from it would choose its epoch, and the
    export rule its model, on patients its weights have seen. Compared on the same data (the same
    content id) and, where both runs trained on partial labels, on this run's exams."""
    init = init_config(store, config.init)
    size = config.settings["size"]
    sources = [(load_dataset(config.data, size=size).patients, config.fold, init.fold)] \
        if init.data_id == config.data_id else []
    if config.partial is not None and init.partial is not None:
        sources.append((load_dataset(config.partial, size=size).patients, exam_fold(config), exam_fold(init)))
    leaks = set()
    for patients, fold, init_fold in sources:
        ours, theirs = _patient_split(config, patients, fold), _patient_split(init, patients, init_fold)
        leaks |= set(ours.query("subset != 'train'")["patient"]) & set(theirs.query("subset == 'train'")["patient"])
    return {str(p) for p in leaks}


def _patient_split(config: RunConfig, patients, fold: int) -> pd.DataFrame:
    """``patients`` split by the run's settings and validation seed, ``fold`` held out."""
    settings = config.settings
    return make_split(patients, seed=settings["split_seed"], val_seed=config.seed, folds=settings["folds"], fold=fold)


def partial_split(config: RunConfig, source) -> pd.DataFrame:
    """The partially labelled source's patients split as the run's data are (same folds and
    validation seed; fold ``partial_fold``, the run's own unless set): ``patient, subset``."""
    return _patient_split(config, load_dataset(source, size=config.settings["size"]).patients, exam_fold(config))


def exam_fold(config: RunConfig) -> int:
    """The fold of the partially labelled exams a run holds out: ``partial_fold``, else its own fold."""
    return config.settings.get("partial_fold", config.fold)


def split_data(config: RunConfig, split_folder: Path | None = None) -> dict:
    """The run's train / val / test slices (and the split manifest, saved if a folder is given)."""
    return _split(config, split_folder)[0]


def _split(config: RunConfig, split_folder: Path | None = None) -> tuple[dict, set]:
    """:func:`split_data`, and the case ids of each validation and test patient's central slice
    (the study's view, nearest the middle of all the patient's slices)."""
    settings = config.settings
    if recorded_data_id_of(config.data):
        raise DataError(config.data, "the data are named by their content id only (their records can be read, "
                                     "but splitting or training needs the data themselves: give their folder)")
    dataset = _same_data(load_dataset(config.data, size=settings["size"]), config.data, config.data_id)
    split = _patient_split(config, dataset.patients, config.fold)
    subsets = {name: dataset.select(subset_mask(dataset.patients, split, name)) for name in ("train", "val", "test")}
    per_train = settings["train_slices_per_patient"]
    if per_train:
        subsets["train"] = subsets["train"].central(per_train)
    if settings["max_train_images"]:
        subsets["train"] = subsets["train"].select(np.arange(min(settings["max_train_images"], len(subsets["train"]))))
    if config.augment in robust.RANDOMISED_FRACTION:
        subsets["train"] = robust.with_phantom(subsets["train"], config.seed,
                                               every_slice=config.augment in robust.EVERY_PHANTOM_SLICE)
    if config.partial is not None:
        partial = _same_data(load_dataset(config.partial, size=settings["size"]), config.partial, config.partial_id)
        own = partial_split(config, config.partial)
        split = pd.concat([split, own], ignore_index=True)
        strided = partial.slice_index % settings["partial_stride"] == 0
        subsets["train"] = concat(subsets["train"], partial.select(subset_mask(partial.patients, own, "train") & strided))
    if split_folder is not None:
        save_split(split, Path(split_folder) / "split.csv")
    central = set()
    for name in ("val", "test"):
        central |= set(subsets[name].central(1).case_ids)
        subsets[name] = subsets[name].central(settings["eval_slices_per_patient"])
    return subsets, central


def _check_data(config: RunConfig, folder: Path) -> dict:
    """The SHA-256 of the run's data (and partial labels) bytes, recorded in its ``config.json``; a
    clear error where they no longer prepare as configured, or differ from those an interrupted run
    of ``folder`` started on."""
    sources = {"data_sha256": (config.data, config.data_id)}
    if config.partial is not None:
        sources["partial_sha256"] = (config.partial, config.partial_id)
    digests = {key: _same_data(load_dataset(source, size=config.settings["size"]), source, data_id).data_sha256
               for key, (source, data_id) in sources.items()}
    started = folder / "config.json"
    recorded = read_json(started).get("resolved", {}) if started.is_file() else {}
    for key, digest in digests.items():
        if recorded.get(key, digest) != digest:
            raise DataError(sources[key][0], f"its files' bytes differ from those run {folder.name} started on; "
                                             "--restart trains it afresh")
    return digests


def _same_data(dataset, source, data_id: str):
    """The dataset, or a clear error where it is not what the run was configured on (the files, or
    the partial-label rules, changed since): training it would record other data under that id.
    The content key is compared, not the folder's name, which the id also carries (a renamed copy
    is the same data)."""
    if dataset.data_id.rsplit("-", 1)[-1] != data_id.rsplit("-", 1)[-1]:
        raise DataError(source, f"prepares as {dataset.data_id}, not the run's {data_id}: the files or the "
                                "labelling rules changed since the run was configured")
    return dataset


def save_folds(config: RunConfig, store) -> Path | None:
    """The fold manifest (``patient,fold``) of a cross-validated run, once per store and data."""
    settings = config.settings
    if settings["folds"] < 2:
        return None
    path = Path(store) / "folds" / f"{config.data_id}-k{settings['folds']}-seed{settings['split_seed']}.csv"
    if not path.is_file():
        dataset = load_dataset(config.data, size=settings["size"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            make_folds(dataset.patients, settings["folds"], settings["split_seed"]).to_csv(tmp, index=False)
    return path


def save_inputs(config: RunConfig, store, test) -> Path:
    """The fold's test images (8-bit), references and patients, written once (compressed)."""
    path = inputs_path(config, store)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, images=np.rint(test.images[..., 0] * 255).astype(np.uint8),
                                structures=test.structures.astype(np.uint8), case_ids=test.case_ids,
                                patients=test.patients, slice_index=test.slice_index, spacing=test.spacing)
    return path


def compile_model(config: RunConfig, steps_per_epoch: int = 1, precision: str = "float32") -> keras.Model:
    """The run's network in the dtype policy ``precision``, compiled with Adam on its schedule."""
    settings = config.settings
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = build_model(config.model, input_shape=(settings["size"], settings["size"], 1),
                            num_classes=labels.num_classes(config.task), width=settings["width"],
                            bn_momentum=settings["bn_momentum"], dropout=settings["dropout"])
    finally:
        keras.config.set_dtype_policy(previous)
    if has_dual_output(model):
        loss, weights = losses.dual_output_losses(config.loss, config.task, aux_weight=settings["aux_weight"])
    else:
        loss, weights = {"mask": losses.get_loss(config.loss, config.task)}, None
    optimizer = keras.optimizers.Adam(learning_rate(settings, steps_per_epoch))
    model.compile(optimizer=optimizer, loss=loss, loss_weights=weights)
    return model


def learning_rate(settings: dict, steps_per_epoch: int):
    """The profile's learning rate: constant, or a linear warm-up over ``warmup_epochs`` to
    ``learning_rate`` followed by a cosine decay to 0 at the last step of the run."""
    if settings["lr_schedule"] == "constant":
        return settings["learning_rate"]
    total = settings["epochs"] * steps_per_epoch
    warmup = min(int(round(settings["warmup_epochs"] * steps_per_epoch)), total - 1)
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(settings["learning_rate"], total)
    return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=settings["learning_rate"],
                                                  warmup_steps=warmup)


def epoch_dataset(subset, task: str, batch_size: int, seed: int, epoch: int, augment: bool | str,
                  dual: bool) -> tf.data.Dataset:
    """One epoch of training batches, in an order (and augmentation draws) fixed by (seed, epoch);
    ``augment`` is a run's mode (:data:`spine.training.config.AUGMENT_MODES`)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(subset))
    classes = subset.labels(task)[order][..., None].astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((subset.images[order], classes)).batch(batch_size).enumerate()
    count = labels.num_classes(task)
    transform = _batch_augmentation(augment, seed, epoch)

    def targets(batch, images, masks):
        if transform is not None:
            images, masks = transform(batch, images, masks)
        hot = tf.one_hot(tf.cast(masks[..., 0], tf.int32), count)  # labels.UNKNOWN: all zero, ignored by the losses
        wanted = {"mask": hot}
        if dual:
            # each cell's class shares among its known pixels (exactly the area average when all are known)
            pool = lambda x: tf.nn.avg_pool2d(x, BOTTLENECK_FACTOR, BOTTLENECK_FACTOR, "VALID")  # noqa: E731
            wanted["aux"] = tf.math.divide_no_nan(pool(hot), pool(tf.reduce_sum(hot, axis=-1, keepdims=True)))
        return images, wanted

    # tf.data's autotuner is off: its background thread took CPU from the 2-core training steps,
    # and tearing an epoch's iterator down waited for its next wake-up (an interval that doubles
    # up to about 10 s), so that epochs ended on 10.25 s ticks: 10.3, 20.5, 41 or 82 s for 8 s of
    # steps (benchmarks/results/epoch_stalls_before.csv against epoch_stalls.csv).
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.map(lambda batch, pair: targets(batch, *pair)).prefetch(2).with_options(options)


def _batch_augmentation(augment: bool | str, seed: int, epoch: int):
    """``(batch index, images, masks) -> (images, masks)`` for the mode, or None without one."""
    if augment in robust.RANDOMISED_FRACTION:
        fraction = robust.RANDOMISED_FRACTION[augment]
        return lambda batch, images, masks: robust.augment_batch(images, masks, robust.batch_seed(seed, epoch, batch),
                                                                 fraction)
    if not augment:
        return None
    pipeline = augmentation.augmenter(seed * 1000 + epoch)

    def study(batch, images, masks):
        out = pipeline({"images": images, "segmentation_masks": masks}, training=True)
        return out["images"], out["segmentation_masks"]
    return study


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
    return score_predictions(predict_labels(model, subset.images), subset, task)


def score_predictions(predictions: np.ndarray, subset, task: str) -> tuple[pd.DataFrame, dict]:
    """:func:`score` of label maps already predicted for ``subset``; the per-image table also
    names each image's patient."""
    spacings = [None if np.isnan(s).any() else tuple(s) for s in subset.spacing]
    per_image, summary = metrics.evaluate(subset.labels(task), predictions, labels.num_classes(task),
                                          spacings=spacings, names=subset.case_ids)
    per_image.insert(1, "patient", subset.patients)
    return per_image, summary


def validation_dice(model: keras.Model, subset, task: str) -> float:
    """The selection score: Dice per image (binary: foreground; multiclass: mean over vertebra,
    disc and canal), averaged per patient, then over patients. Overlap only: the surface
    distances of :func:`score` would cost more than the prediction."""
    predictions = predict_labels(model, subset.images)
    count = labels.num_classes(task)
    per_image = [metrics.selection_dice(t, p, count) for t, p in zip(subset.labels(task), predictions)]
    return float(stats.per_patient_means(pd.DataFrame({"patient": subset.patients, "dice": per_image}))["dice"].mean())


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


# How a run's kept epoch is chosen, by its partial_select (spine.training.config.PARTIAL_FIELDS).
SELECTIONS = {"best": "best validation Dice (binary: foreground; multiclass: mean over vertebra, disc, canal), "
                      "per-patient mean over the validation patients' central slices",
              "last": "the last epoch (partial_select=last: the validation Dice does not see the partially "
                      "labelled source)"}


def _train_epochs(model, config, subsets, folder: Path, state: dict, verbose: bool) -> list:
    """Train from ``state["epochs_done"]``; returns the best weights (also kept on disk at each checkpoint)."""
    settings = config.settings
    dual = has_dual_output(model)
    steps = int(np.ceil(len(subsets["train"]) / settings["batch_size"]))
    progress = _Progress(settings["epochs"], steps, verbose)
    best = _load_best(model, folder, state)
    for epoch in range(state["epochs_done"], settings["epochs"]):
        data = epoch_dataset(subsets["train"], config.task, settings["batch_size"], config.seed, epoch,
                             config.augment, dual)
        reseed_layers(model, config.seed, epoch)
        started = time.perf_counter()
        # a per-batch callback makes Keras wait for every step's logs, so the bar only when shown
        history = model.fit(data, epochs=epoch + 1, initial_epoch=epoch, verbose=0, shuffle=False,
                            callbacks=[progress] if verbose else [])
        fitted = time.perf_counter()
        val_dice = validation_dice(model, subsets["val"], config.task)
        row = {"epoch": epoch + 1, **{k: v[-1] for k, v in history.history.items()}, "val_dice": val_dice,
               "fit_seconds": round(fitted - started, 2), "val_seconds": round(time.perf_counter() - fitted, 2)}
        progress.finish(row["loss"], val_dice)
        if val_dice > state["best_val_dice"] or settings.get("partial_select") == "last":
            state.update(best_val_dice=val_dice, best_epoch=epoch + 1)
            best = model.get_weights()
        state["history"].append(row)
        state["epochs_done"] = epoch + 1
        if (epoch + 1) % settings["checkpoint_every"] == 0 or epoch + 1 == settings["epochs"]:
            _checkpoint(model, best, folder, state)
    return best


def _checkpoint(model, best: list, folder: Path, state: dict) -> None:
    """The model with its optimizer, the best weights so far, then the state that names them.

    The epoch's row and the run's seconds count the checkpoint's time too; a row is final only
    once written, so the epochs since the last checkpoint are timed on their own."""
    saving = time.perf_counter()
    save_model(model, folder / "last.keras")
    with atomic_path(folder / "best.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, *best)  # in get_weights() order
    row = state["history"][-1]
    row["checkpoint_seconds"] = round(time.perf_counter() - saving, 2)
    for row in state["history"]:
        row.setdefault("seconds", round(row["fit_seconds"] + row["val_seconds"] + row.get("checkpoint_seconds", 0), 2))
    state["seconds"] = sum(row["seconds"] for row in state["history"])
    write_json(folder / "state.json", state)  # last: state never runs ahead of the files


def _load_best(model, folder: Path, state: dict) -> list:
    """The best weights of a resumed run (its checkpoint's), or the current ones for a new run."""
    path = folder / "best.npz"
    if not state["epochs_done"] or not path.is_file():
        return model.get_weights()
    with np.load(path) as stored:
        return [stored[f"arr_{i}"] for i in range(len(stored.files))]


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


def train(config: RunConfig, store=DEFAULT_STORE, *, force: bool = False, resume: bool = True,
          verbose: bool = True) -> Record:
    """Train, select on validation, test once, and record; an existing record is returned as is."""
    store = check_writable(store)
    existing = find_record(store, config)
    if existing is not None and not force:
        return existing
    folder = run_dir(store, config)
    if force or not resume:
        shutil.rmtree(folder, ignore_errors=True)
    digests = _check_data(config, folder)  # before anything is written
    if config.init is not None and (leaks := init_leaks(config, store)):
        raise ConfigError(f"--init {config.init}: that run trained on {', '.join(sorted(leaks))}, which this run "
                          "validates or tests on (runs of other seeds draw other validation patients): start "
                          "from a run of the same seed, fold and split")
    folder.mkdir(parents=True, exist_ok=True)
    precision = device.resolve_precision(config.settings["precision"])
    save_folds(config, store)
    subsets, central = _split(config, folder)
    steps = int(np.ceil(len(subsets["train"]) / config.settings["batch_size"]))
    state_path = folder / "state.json"
    tf.config.experimental.enable_op_determinism()
    state, model = None, None
    if state_path.is_file() and (folder / "last.keras").is_file():
        # The checkpoint carries the optimizer and the layers' random-generator states.
        state = read_json(state_path)
        model = _load_checkpoint(folder / "last.keras")
        if int(model.optimizer.iterations) != state["epochs_done"] * steps:
            # interrupted between writing the checkpoint and its state: they disagree, start over
            log.warning("%s: checkpoint and state disagree; training this run from the start", folder)
            state, model = None, None
    if state is None:
        write_json(folder / "config.json", config.to_dict() | {"resolved": {"precision": precision,
                                                                            **device.describe(), **digests}})
        keras.utils.set_random_seed(config.seed)
        state = {"epochs_done": 0, "best_val_dice": -1.0, "best_epoch": 0, "history": [], "seconds": 0.0,
                 "precision": precision}
        model = compile_model(config, steps, precision)
        if config.init is not None:
            _start_from(model, config, store)
    model.run_eagerly = steps * config.settings["epochs"] <= EAGER_STEPS
    best = _train_epochs(model, config, subsets, folder, state, verbose)
    model.set_weights(best)
    return _finish(model, config, folder, store, subsets, central, state)


def _finish(model, config, folder: Path, store, subsets, central: set, state: dict) -> Record:
    started = time.perf_counter()
    test = subsets["test"]
    predictions = predict_labels(model, test.images)
    per_image, test_summary = score_predictions(predictions, test, config.task)
    per_image.insert(2, "central", per_image["image"].isin(central))
    per_patient = stats.per_patient_means(per_image)
    intervals = {key: stats.bootstrap_ci(per_patient[key].to_numpy(), seed=config.seed)
                 for key in stats.INTERVAL_KEYS if key in per_patient}
    _, val_summary = score(model, subsets["val"], config.task)
    payload = {
        "selected_epoch": state["best_epoch"],
        "selection": SELECTIONS[config.settings.get("partial_select", "best")],
        "precision": state["precision"],
        "subsets": {name: {"images": len(s), "patients": len(set(s.patients))} for name, s in subsets.items()},
        "val": val_summary,
        "test": test_summary,
        "test_patients": {"n": len(per_patient), "means": per_patient.drop(columns=["patient", "images"]).mean().to_dict()},
        "test_central": {"n": int(per_image["central"].sum()),
                         "means": per_image.loc[per_image["central"]].drop(columns=["image", "patient", "central"]).mean().to_dict()},
        "test_ci95": {k: dict(zip(("estimate", "low", "high"), map(float, v))) for k, v in intervals.items()},
        "ci_unit": "patient (per-patient means of the test patients' central slices), BCa bootstrap",
        "conventions": metrics.CONVENTIONS.strip(),
    }
    _write_csv(per_image, folder / "per_image.csv")
    _write_csv(per_patient, folder / "per_patient.csv")
    _write_csv(pd.DataFrame(state["history"]), folder / "history.csv")
    with atomic_path(folder / "predictions.npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, labels=predictions.astype(np.uint8), case_ids=test.case_ids)
    save_inputs(config, store, test)
    write_json(folder / "environment.json",
               environment(state["seconds"] + time.perf_counter() - started) | {"precision": state["precision"]})
    if config.partial is not None:
        checked = load_split(folder / "split.csv")
        write_json(folder / transfer.BODY_CHECK_FILE, transfer.body_check(model, config.partial, checked))
    save_model(model, folder / "model.keras")
    for leftover in ("last.keras", "best.npz", "state.json"):
        (folder / leftover).unlink(missing_ok=True)
    write_json(folder / "metrics.json", payload)  # last: its presence marks the run finished
    return load_record(folder)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def evaluate_run(path, data=None) -> tuple[pd.DataFrame, dict]:
    """Score a finished run's model on patients it was neither trained nor validated on.

    On the run's own data (``data`` None, or a source of the same content) these are its test
    patients. Another source is scored on all its patients (``eval_slices_per_patient`` slices
    each) except any the run trained or validated on: another sequence of the same archive
    shares patients. ``summary["scored"]`` says which it was.
    """
    record = load_record(path)
    config = record.config
    model = keras.saving.load_model(record.model_path)
    size = config.settings["size"]
    dataset = None if data is None else load_dataset(data, size=size)
    if dataset is None or dataset.data_id == config.data_id:
        own = config if data is None else dataclasses.replace(config, data=str(data))
        per_image, summary = score(model, split_data(own)["test"], config.task)
        return per_image, {**summary, "scored": f"the run's test patients ({config.data})"}
    split = load_split(record.path / "split.csv")
    seen = set(split.loc[split["subset"] != "test", "patient"].astype(str))
    unseen = ~np.isin(dataset.patients.astype(str), sorted(seen))
    if not unseen.any():
        raise DataError(data, "every patient of this source was used to train or validate the run")
    excluded = len(set(dataset.patients[~unseen]))
    per_image, summary = score(model, dataset.select(unseen).central(config.settings["eval_slices_per_patient"]),
                               config.task)
    return per_image, {**summary, "scored": f"all patients of {data}" if not excluded else
                       f"{data} without the {excluded} patient(s) the run trained or validated on"}


def record_model(record: Record) -> keras.Model:
    """The run's selected model, from the record's own file. Records are committed without their
    model files; for one of those, :func:`retrain` is the call that trains it again."""
    if not record.model_path.is_file():
        raise DataError(record.model_path, "the record has no model file (records are committed without them); "
                                           "engine.retrain(record) trains the run again into the cache")
    return keras.saving.load_model(record.model_path)


def retrain(record: Record) -> keras.Model:
    """The run's selected model: from the record's file if it has one, otherwise trained again (same
    configuration and seed: minutes) into a scratch store in the cache, so the record itself is
    never rewritten."""
    if record.model_path.is_file():
        return record_model(record)
    from spine.data import cache_dir

    return record_model(train(record.config, cache_dir() / "models", verbose=False))
