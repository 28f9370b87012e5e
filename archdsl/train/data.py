"""The data of ``archdsl train``: an ImageFolder (``DIR/train/<class>/*``, ``DIR/val/<class>/*``), checked
before any training starts, loaded with torchvision's transforms.

Every problem with the folder is a :class:`DataError` carrying a located diagnostic (E360-E369):

E360 torchvision, Pillow or torch missing or not matching the installed torch (the hint installs a
working set); E361 the data folder does not exist; E362 it (or its ``train``/``val``) is not a folder;
E363 it is empty; E364 it has no ``train/`` or no ``val/``; E365 a split has no class folders;
E366 the class folders differ between the splits (the differing names listed); E367 a class folder
holds no readable image; E368 a folder or an image cannot be read (an image that passed the check at
start-up but cannot be decoded mid-epoch); E369 the spec's input shape cannot be fed with images.

A corrupt or unreadable image is not an error: every image is checked when the folder is opened
(``PIL.Image.verify``, which reads the file without decoding the pixels), and those that fail are
left out and named in :attr:`Data.skipped`, so that a bad file never stops a worker mid-epoch.

Randomness: the augmentation of a sample is a function of (a per-epoch key, the sample's index) only,
drawn from the training loader's ``generator`` (or the distributed sampler's seed and epoch); it never
touches the global RNG, and it does not depend on the number of workers. torch, torchvision and Pillow
are imported inside the functions: importing this module costs nothing and works without them.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends import extras
from ..diagnostics import Diagnostic, Loc, did_you_mean

CMDLINE = Loc("<command line>", 1, 1)
#: The file names torchvision's ImageFolder takes as images (compared in lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SPLITS = ("train", "val")
#: Folder names people give the validation split, each answered with "rename it to val/".
VAL_ALIASES = ("valid", "validation", "test", "eval", "dev")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: Inputs up to this side get CIFAR's augmentation (padded random crop); larger ones ImageNet's.
SMALL_SIDE = 64
#: Names shown in one message before "(and N more)".
SHOWN = 5
LAYOUT = "archdsl train reads DIR/train/<class>/<image> and DIR/val/<class>/<image> (torchvision's ImageFolder)"
DECODE_HINT = ("the image passed the check when the folder was opened (PIL verify) but its pixels cannot be "
               "decoded: replace or delete the file, then run again")


class DataError(Exception):
    """A problem with the data folder or the packages that read it: :attr:`diagnostic` says where and why.

    Raised in a DataLoader worker, it reaches the main process rebuilt from its text (torch re-raises a
    worker's exception as ``type(message)``): the last ``FILE:L:C: error[E36x]: ...`` line of that text
    becomes the diagnostic again, without the worker's traceback."""

    def __init__(self, diagnostic: Diagnostic | str) -> None:
        if isinstance(diagnostic, str):
            diagnostic = _parse_diagnostic(diagnostic)
        super().__init__(f"{diagnostic.loc}: error[{diagnostic.code}]: {diagnostic.message}")
        self.diagnostic = diagnostic


def _parse_diagnostic(text: str) -> Diagnostic:
    """The diagnostic whose first line is the last ``FILE:L:C: error[E36x]: MESSAGE`` line of ``text``."""
    found = re.findall(r"(?m)^(?:[\w.]*DataError: )?(.+):(\d+):(\d+): error\[(E36\d)\]: (.*)$", text)
    if not found:
        lines = text.strip().splitlines() or ["a data loader worker failed"]
        return Diagnostic("E368", lines[-1].strip(), CMDLINE, hint=DECODE_HINT)
    file, line, col, code, message = found[-1]
    return Diagnostic(code, message, Loc(file, int(line), int(col)), hint=DECODE_HINT if code == "E368" else "")


def _error(code: str, message: str, where: Path | Loc, hint: str, notes: tuple[str, ...] = ()) -> DataError:
    loc = where if isinstance(where, Loc) else Loc(str(where), 1, 1)
    return DataError(Diagnostic(code, message, loc, hint=hint, notes=notes))


def _names(items: list[str]) -> str:
    """``a, b, c`` (at most :data:`SHOWN`, then ``(and N more)``)."""
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" (and {more} more)" if more > 0 else "")


# ------------------------------------------------------------------------------------ the packages


def require_vision() -> None:
    """Raise :class:`DataError` E360 unless torch, torchvision and Pillow import and torchvision was built
    for the installed torch; the hint is the exact command that installs a working set."""
    mismatch = extras.torchvision_mismatch()  # from the metadata, before an import that fails obscurely
    if mismatch is not None:
        raise _unavailable(mismatch)
    importing = "torch"
    try:
        import torch  # noqa: F401

        importing = "torchvision"
        import torchvision  # noqa: F401
        from torchvision import transforms  # noqa: F401

        importing = "PIL"
        from PIL import Image  # noqa: F401
    except Exception as exc:  # noqa: BLE001 (any import failure is the environment's, reported as such)
        raise _unavailable(extras.train_problem(importing, exc)) from None


def _unavailable(problem: extras.ExtraUnavailable) -> DataError:
    return _error("E360", f"archdsl train: {problem.message}", CMDLINE, problem.hint,
                  (problem.note,) if problem.note else ())


# ------------------------------------------------------------------------------------ the folder


@dataclass
class Data:
    """The opened ImageFolder: the two datasets, the class names (sorted folder names, the label order)
    and the images left out because they cannot be read (their paths)."""

    train: Any
    val: Any
    classes: list[str]
    skipped: list[str] = field(default_factory=list)


def open_imagefolder(root: str, input_shape: tuple[int, int, int], augment: bool = True) -> Data:
    """Check the ImageFolder at ``root`` and open its two splits for inputs of ``input_shape`` (C, H, W).

    Images load as ``L`` for 1 channel, ``RGB`` for 3. Training images are augmented when ``augment``
    (sides up to 64: a random crop of the image padded by 4, or by an eighth of the side below 32, and a
    horizontal flip; larger: RandomResizedCrop and a flip); validation images are resized (above 64:
    the short side to the longer input side / 0.875, 224 -> 256, then center-cropped). Both are
    normalized (ImageNet's mean and std for 3 channels, 0.5 and 0.5 for 1). Raises :class:`DataError`."""
    channels, height, width = _check_shape(input_shape)
    require_vision()
    base = Path(root)
    splits = _check_root(base)
    classes = _check_classes(base, splits)
    skipped: list[str] = []
    samples = {s: _samples(base, splits[s], classes, skipped) for s in SPLITS}
    mode = "L" if channels == 1 else "RGB"
    train_tf, val_tf = _transforms(channels, height, width, augment)
    return Data(train=ImageSet(samples["train"], classes, mode, train_tf, random=augment),
                val=ImageSet(samples["val"], classes, mode, val_tf, random=False),
                classes=classes, skipped=skipped)


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) when images can feed it: 1 or 3 channels, positive sides; else E369."""
    dims = tuple(shape)
    if len(dims) != 3 or any(not isinstance(d, int) or d < 1 for d in dims):
        raise _error("E369", f"the spec's input {'x'.join(map(str, dims))} is not an image shape (C x H x W)",
                     CMDLINE, "write the spec's input as CxHxW, e.g. `input 3x32x32`")
    if dims[0] not in (1, 3):
        raise _error("E369", f"the spec's input has {dims[0]} channels; images load as grayscale (1) or RGB (3)",
                     CMDLINE, f"write the spec's input as 1x{dims[1]}x{dims[2]} or 3x{dims[1]}x{dims[2]}")
    return dims[0], dims[1], dims[2]


def _entries(folder: Path) -> list[os.DirEntry]:
    """The visible entries of ``folder``, sorted by name (hidden ones, ``.DS_Store``, are ignored);
    E368 when it cannot be listed."""
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        raise _error("E368", f"cannot read the folder {folder}: {exc.strerror or exc}", folder,
                     "make the folder readable (and listable) by this user") from None


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a symbolic link to a folder
    except OSError:
        return False


def _check_root(base: Path) -> dict[str, Path]:
    """The ``train`` and ``val`` folders of ``base``; E361-E364 when the layout is not there."""
    try:
        exists = base.exists()
    except OSError as exc:  # a parent that cannot be searched
        raise _error("E368", f"cannot read the data folder {base}: {exc.strerror or exc}", base,
                     "make the folder and its parents readable by this user") from None
    if not exists:
        raise _error("E361", f"data folder {base} does not exist", base,
                     f"{_near_folder(base)}--data takes the folder that holds train/ and val/", (LAYOUT,))
    if not base.is_dir():
        raise _error("E362", f"data folder {base} is not a folder", base,
                     "--data takes a folder (unpack an archive first)", (LAYOUT,))
    entries = _entries(base)
    if not entries:
        raise _error("E363", f"data folder {base} is empty", base,
                     "put the training images in train/<class>/ and the validation images in val/<class>/",
                     (LAYOUT,))
    named = {e.name: e for e in entries}
    for split in SPLITS:
        if split in named and not _is_dir(named[split]):
            raise _error("E362", f"{base / split} is not a folder", base / split,
                         f"{split}/ must be a folder of class folders", (LAYOUT,))
    missing = [s for s in SPLITS if s not in named]
    if missing:
        raise _error("E364", f"data folder {base} has no {' and no '.join(m + '/' for m in missing)}",
                     base, _split_hint(base, entries, missing), (LAYOUT,))
    return {s: base / s for s in SPLITS}


def _near_folder(base: Path) -> str:
    """``did you mean 'data'? `` when a folder beside the missing ``base`` has a close name, else ``""``."""
    try:
        names = [e.name for e in _entries(base.parent) if _is_dir(e)]
    except DataError:  # the parent cannot be listed either: no suggestion
        return ""
    near = did_you_mean(base.name, names)
    return near + " " if near else ""


def _split_hint(base: Path, entries: list[os.DirEntry], missing: list[str]) -> str:
    """What to do when ``missing`` splits are absent: rename an alias, or move class folders in."""
    folders = [e.name for e in entries if _is_dir(e)]
    alias = next((f for f in folders if f.lower() in VAL_ALIASES), None)
    if missing == ["val"] and alias:
        return f"rename {base / alias} to {base / 'val'}"
    near = next((f for m in missing for f in folders if did_you_mean(f, [m])), None)
    if near and len(missing) == 1:
        return f"rename {base / near} to {base / missing[0]}"
    if folders and "train" not in folders and "val" not in folders:
        return (f"the folders here ({_names(folders)}) look like class folders: move them into {base / 'train'} "
                f"and put a share of each class's images (say a tenth) in {base / 'val'}/<class>/")
    return f"make {base / missing[0]}/ with one folder per class, the same class folders as the other split"


def _check_classes(base: Path, splits: dict[str, Path]) -> list[str]:
    """The class names, the same in both splits; E365 (none) or E366 (they differ)."""
    found: dict[str, list[str]] = {}
    for split, folder in splits.items():
        entries = _entries(folder)
        found[split] = [e.name for e in entries if _is_dir(e)]
        if not found[split]:
            images = [e.name for e in entries if e.name.lower().endswith(IMAGE_EXTENSIONS)]
            hint = (f"the images lie directly in {folder}: put each class's images in a folder of its own, "
                    f"{folder}/<class>/" if images else f"make one folder per class in {folder}")
            raise _error("E365", f"{folder} has no class folders", folder, hint, (LAYOUT,))
    train, val = set(found["train"]), set(found["val"])
    if train != val:
        only_train, only_val = sorted(train - val), sorted(val - train)
        parts = [f"only in train/: {_names(only_train)}" if only_train else "",
                 f"only in val/: {_names(only_val)}" if only_val else ""]
        raise _error("E366", f"class folders differ between train/ and val/: {'; '.join(filter(None, parts))}",
                     splits["val"], _classes_hint(only_train, only_val),
                     ("a class is a folder name: both splits need the same class folders, in the same spelling",))
    return sorted(train)


def _classes_hint(only_train: list[str], only_val: list[str]) -> str:
    """Renames for the near misses (``val/cot`` vs ``train/cat``), else what to add."""
    renames = []
    for name in only_val:
        near = did_you_mean(name, only_train)
        if near:
            renames.append(f"val/{name}: {near}")
    if renames:
        return "rename the folder to match: " + "; ".join(renames)
    return "give both splits the same class folders: add the missing ones (with images) or remove the extra ones"


def _samples(base: Path, folder: Path, classes: list[str], skipped: list[str]) -> list[tuple[str, int]]:
    """(path, class index) of every readable image under ``folder``/<class>/ (sub-folders included, in
    name order); unreadable ones go to ``skipped``; E367 for a class folder with no readable image."""
    out: list[tuple[str, int]] = []
    for index, name in enumerate(classes):
        files = _image_files(folder / name)
        readable = [_readable(f) for f in files]
        good = [f for f, ok in zip(files, readable) if ok]
        skipped.extend(f for f, ok in zip(files, readable) if not ok)
        if not good:
            bad = [Path(f).name for f in files]
            why = f" ({len(bad)} unreadable, left out: {_names(bad)})" if bad else ""
            raise _error("E367", f"class folder {folder / name} has no readable images{why}", folder / name,
                         f"put the class's images ({', '.join(IMAGE_EXTENSIONS)}) in it, or remove the class "
                         "folder from both train/ and val/", (LAYOUT,))
        out.extend((f, index) for f in good)
    return out


def _image_files(folder: Path) -> list[str]:
    """Image files under ``folder`` and its visible sub-folders (symbolic links to folders not followed
    below the class folder: no loops), in name order."""
    out: list[str] = []
    for entry in _entries(folder):
        if _is_dir(entry) and not entry.is_symlink():
            out.extend(_image_files(Path(entry.path)))
        elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
            out.append(entry.path)
    return out


def _readable(path: str) -> bool:
    """True when Pillow opens the file and ``verify`` finds it whole (PNG: every chunk and its CRC)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
    except Exception:  # noqa: BLE001 (Pillow raises OSError, SyntaxError, ValueError, ... for a bad file)
        return False
    return True


# ------------------------------------------------------------------------------------ loading


def _transforms(channels: int, height: int, width: int, augment: bool) -> tuple[Any, Any]:
    """(train, val) torchvision transforms for inputs of (channels, height, width)."""
    from torchvision import transforms as T

    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.5,), (0.5,))
    tail = [T.ToTensor(), T.Normalize(mean, std)]
    size = (height, width)
    if max(size) <= SMALL_SIDE:
        val = [T.Resize(size)]
        # CIFAR's pad-4 crop at 32 px; an eighth of the side below (4 px would crop away half of 8 px digits)
        pad = max(1, min(4, min(size) // 8))
        train = [T.Resize(size), T.RandomCrop(size, padding=pad), T.RandomHorizontalFlip()]
    else:
        val = [T.Resize(round(max(size) / 0.875)), T.CenterCrop(size)]
        train = [T.RandomResizedCrop(size), T.RandomHorizontalFlip()]
    return T.Compose((train if augment else val) + tail), T.Compose(val + tail)


def load_image(path: str, mode: str) -> Any:
    """The image at ``path`` as a PIL image in ``mode``; E368 when it cannot be read or decoded."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert(mode)  # convert() decodes: the file can be closed afterwards
    except Exception as exc:  # noqa: BLE001 (any failure to read one file is reported with its name)
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _error("E368", f"cannot decode the image {path}: {why}", Path(path), DECODE_HINT) from None


def _mix(*values: int) -> int:
    """A seed from integers (seed, epoch, index): deterministic in every process and Python version."""
    out = 0x9E3779B97F4A7C15
    for v in values:
        out = ((out ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3) % (1 << 64)
    return out % (1 << 63)


class ImageSet:
    """A map-style dataset of (image tensor, class index), with ImageFolder's attributes (``samples``,
    ``targets``, ``classes``, ``class_to_idx``). A key is an index, or (epoch key, index) from the
    samplers of :func:`make_loaders`: the random augmentation of that sample is seeded by both."""

    def __init__(self, samples: list[tuple[str, int]], classes: list[str], mode: str, transform: Any,
                 random: bool) -> None:
        self.samples, self.classes, self.mode, self.transform, self.random = samples, classes, mode, transform, random
        self.targets = [t for _, t in samples]
        self.class_to_idx = {c: i for i, c in enumerate(classes)}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Any, int]:
        """(tensor, class index) of sample ``key`` (an index or (epoch key, index))."""
        epoch_key, index = key if isinstance(key, tuple) else (0, key)
        path, target = self.samples[index]
        image = load_image(path, self.mode)
        if not self.random:
            return self.transform(image), target
        import torch

        # torchvision's transforms draw from the global CPU generator: seed it for this sample, then put
        # its state back (torch.manual_seed and fork_rng would also touch every accelerator: 10x slower)
        cpu = torch.default_generator
        state = cpu.get_state()
        try:
            cpu.manual_seed(_mix(epoch_key, index))
            return self.transform(image), target
        finally:
            cpu.set_state(state)


class EpochShuffle:
    """The training sampler of one process: each pass draws an epoch key and a permutation from
    ``generator`` (the DataLoader's: reseed it to replay an epoch) and yields (epoch key, index)."""

    def __init__(self, size: int, generator: Any) -> None:
        self.size, self.generator = size, generator

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        import torch

        key = int(torch.randint(0, 1 << 62, (), generator=self.generator))
        order = torch.randperm(self.size, generator=self.generator).tolist()
        return iter([(key, i) for i in order])


@functools.cache
def _distributed_sampler_class() -> type:
    """DistributedSampler yielding (epoch key, index); the key is a function of its seed and epoch."""
    from torch.utils.data import DistributedSampler

    class EpochDistributedSampler(DistributedSampler):
        """torch's DistributedSampler (its shards, padding and ``set_epoch``) with (epoch key, index) keys."""

        def __iter__(self):
            key = _mix(self.seed, self.epoch)
            return iter([(key, i) for i in super().__iter__()])

    return EpochDistributedSampler


def make_loaders(data: Data, batch: int, workers: int, distributed: bool, seed: int, *,
                 num_replicas: int | None = None, rank: int | None = None,
                 pin_memory: bool = False) -> tuple[Any, Any, Any]:
    """(train loader, val loader, the train DistributedSampler or None), deterministic with ``seed``.

    Distributed: each process gets its shard of the training set (``set_epoch`` it every epoch;
    ``num_replicas``/``rank`` default to the process group's); every process gets the whole validation
    set. The last training batch is dropped only when it would hold a single image (BatchNorm cannot
    train on one) and there is a full batch besides."""
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    sampler: Any = None
    if distributed:
        sampler = _distributed_sampler_class()(data.train, num_replicas=num_replicas, rank=rank,
                                               shuffle=True, seed=seed)
        train_sampler, per_process = sampler, sampler.num_samples
    else:
        train_sampler, per_process = EpochShuffle(len(data.train), generator), len(data.train)
    common = {"num_workers": workers, "pin_memory": pin_memory, "persistent_workers": workers > 0}
    train = DataLoader(data.train, batch_size=batch, sampler=train_sampler, generator=generator,
                       drop_last=per_process > batch and per_process % batch == 1, **common)
    val = DataLoader(data.val, batch_size=batch, shuffle=False, generator=torch.Generator().manual_seed(seed),
                     **common)
    return train, val, sampler
