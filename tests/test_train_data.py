"""The data of ``archdsl train`` (archdsl/train/data.py): the ImageFolder checks (E360-E369, each located,
with a hint, never a traceback), the samples and their augmentation, the loaders' determinism and the
distributed sampler. Needs torchvision and Pillow (the reference environment); the missing-torchvision
diagnostic of an environment without them is tested in tests/test_train_data_missing.py."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("PIL")

import numpy as np  # noqa: E402
from imagefolder_support import make_imagefolder, write_corrupt  # noqa: E402
from PIL import Image  # noqa: E402

from archdsl.backends import extras  # noqa: E402
from archdsl.diagnostics import Diagnostic, Loc, format_text  # noqa: E402
from archdsl.train import data as D  # noqa: E402

SHAPE = (3, 16, 16)
CMDLINE = Loc("<command line>", 1, 1)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """3 classes x (40 train + 10 val) 16x16 RGB PNGs."""
    return make_imagefolder(tmp_path / "data")


def _fails(root: Path | str, shape: tuple = SHAPE, code: str = "") -> Diagnostic:
    """The diagnostic of opening ``root``; checks its code and that its rendering is no traceback."""
    with pytest.raises(D.DataError) as info:
        D.open_imagefolder(str(root), shape)
    diag = info.value.diagnostic
    text = format_text(diag)
    assert "Traceback" not in text and diag.hint, text
    assert diag.code == code, text
    return diag


def _at(path: Path) -> Loc:
    return Loc(str(path), 1, 1)


# ------------------------------------------------------------------------------------ bad folders


def test_missing_folder(tmp_path: Path) -> None:
    diag = _fails(tmp_path / "nope", code="E361")
    assert diag.loc == _at(tmp_path / "nope")
    assert diag.message == f"data folder {tmp_path / 'nope'} does not exist"
    assert diag.hint == "--data takes the folder that holds train/ and val/"


def test_missing_folder_suggests_a_close_name(folder: Path) -> None:
    diag = _fails(folder.parent / "dta", code="E361")
    assert diag.hint == "did you mean 'data'? --data takes the folder that holds train/ and val/"


def test_not_a_folder(tmp_path: Path) -> None:
    archive = tmp_path / "images.zip"
    archive.write_bytes(b"PK\x03\x04")
    diag = _fails(archive, code="E362")
    assert (diag.loc, diag.message) == (_at(archive), f"data folder {archive} is not a folder")
    assert "unpack an archive first" in diag.hint


def test_split_that_is_a_file(folder: Path) -> None:
    for f in (folder / "val").rglob("*.png"):
        f.unlink()
    for d in (folder / "val").iterdir():
        d.rmdir()
    (folder / "val").rmdir()
    (folder / "val").write_text("not a folder")
    diag = _fails(folder, code="E362")
    assert diag.loc == _at(folder / "val")
    assert diag.hint == "val/ must be a folder of class folders"


def test_empty_folder(tmp_path: Path) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"\0")  # hidden files do not count
    diag = _fails(empty, code="E363")
    assert (diag.loc, diag.message) == (_at(empty), f"data folder {empty} is empty")
    assert diag.hint == "put the training images in train/<class>/ and the validation images in val/<class>/"


def test_no_val(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", splits=("train",), per_class=2)
    diag = _fails(root, code="E364")
    assert (diag.loc, diag.message) == (_at(root), f"data folder {root} has no val/")
    assert diag.hint == f"make {root / 'val'}/ with one folder per class, the same class folders as the other split"


def test_no_val_but_a_validation_folder(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", splits=("train", "validation"), per_class=2)
    diag = _fails(root, code="E364")
    assert diag.hint == f"rename {root / 'validation'} to {root / 'val'}"


def test_no_train(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", splits=("trian", "val"), per_class=2)
    diag = _fails(root, code="E364")
    assert diag.message == f"data folder {root} has no train/"
    assert diag.hint == f"rename {root / 'trian'} to {root / 'train'}"


def test_class_folders_at_the_top(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", per_class=2, splits=("train",)) / "train"
    diag = _fails(root, code="E364")
    assert diag.message == f"data folder {root} has no train/ and no val/"
    assert diag.hint.startswith(f"the folders here (class_0, class_1, class_2) look like class folders: "
                                f"move them into {root / 'train'}")


def test_no_class_folders(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(root / split / "0.png")
    diag = _fails(root, code="E365")
    assert (diag.loc, diag.message) == (_at(root / "train"), f"{root / 'train'} has no class folders")
    assert diag.hint == (f"the images lie directly in {root / 'train'}: put each class's images in a folder of "
                         f"its own, {root / 'train'}/<class>/")


def test_class_folders_differ(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", per_class=4, class_names=["cat", "dog", "owl"],
                            val_class_names=["cat", "dgo", "owl", "yak"])
    diag = _fails(root, code="E366")
    assert diag.loc == _at(root / "val")
    assert diag.message == "class folders differ between train/ and val/: only in train/: dog; only in val/: dgo, yak"
    assert diag.hint == "rename the folder to match: val/dgo: did you mean 'dog'?"


def test_class_folders_differ_without_a_near_miss(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", per_class=4, class_names=["cat", "dog"], val_class_names=["cat"])
    diag = _fails(root, code="E366")
    assert diag.message == "class folders differ between train/ and val/: only in train/: dog"
    assert diag.hint.startswith("give both splits the same class folders")


def test_class_folder_without_images(folder: Path) -> None:
    for f in (folder / "val" / "class_1").iterdir():
        f.unlink()
    (folder / "val" / "class_1" / "README.txt").write_text("not an image")
    diag = _fails(folder, code="E367")
    where = folder / "val" / "class_1"
    assert (diag.loc, diag.message) == (_at(where), f"class folder {where} has no readable images")
    assert diag.hint.startswith("put the class's images (.jpg, .jpeg, .png")


def test_class_folder_with_only_corrupt_images(folder: Path) -> None:
    where = folder / "train" / "class_2"
    for f in where.iterdir():
        f.unlink()
    for i in range(2):
        write_corrupt(where / f"bad_{i}.png", i)
    diag = _fails(folder, code="E367")
    assert diag.loc == _at(where)
    assert diag.message == f"class folder {where} has no readable images (2 unreadable, left out: bad_0.png, bad_1.png)"


def test_unreadable_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 000 does not stop root (the CI user here): fake the listing's PermissionError instead
    scandir, locked = os.scandir, folder / "val" / "class_0"

    def fake_scandir(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(D.os, "scandir", fake_scandir)
    diag = _fails(folder, code="E368")
    assert diag.loc == _at(locked)
    assert diag.message == f"cannot read the folder {locked}: Permission denied"
    assert diag.hint == "make the folder readable (and listable) by this user"


@pytest.mark.parametrize(("shape", "message"), [
    ((4, 16, 16), "the spec's input has 4 channels; images load as grayscale (1) or RGB (3)"),
    ((3, 16), "the spec's input 3x16 is not an image shape (C x H x W)"),
    ((3, 0, 16), "the spec's input 3x0x16 is not an image shape (C x H x W)"),
])
def test_input_shape_images_cannot_feed(folder: Path, shape: tuple, message: str) -> None:
    diag = _fails(folder, shape, code="E369")
    assert (diag.loc, diag.message) == (CMDLINE, message)


# ------------------------------------------------------------------------------------ corrupt images


def test_corrupt_images_are_skipped_and_named(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", corrupt=3)
    data = D.open_imagefolder(str(root), SHAPE)
    bad = root / "train" / "class_0"
    assert data.skipped == [str(bad / f"broken_{i}.png") for i in range(3)]
    assert len(data.train) == 120 and all("broken" not in p for p, _ in data.train.samples)
    train, _, _ = D.make_loaders(data, 32, 0, False, 0)
    assert sum(len(y) for _, y in train) == 120  # every kept image decodes


def test_image_that_fails_to_decode_mid_epoch_names_the_file(folder: Path) -> None:
    data = D.open_imagefolder(str(folder), SHAPE)
    victim = Path(data.train.samples[5][0])
    write_corrupt(victim, 0)  # broken after the check at open time
    with pytest.raises(D.DataError) as info:
        data.train[5]
    diag = info.value.diagnostic
    assert (diag.code, diag.loc, diag.hint) == ("E368", _at(victim), D.DECODE_HINT)
    assert diag.message.startswith(f"cannot decode the image {victim}: ")


def test_decode_failure_in_a_worker_comes_back_as_the_same_diagnostic(folder: Path) -> None:
    data = D.open_imagefolder(str(folder), SHAPE)
    for path, _ in data.train.samples:
        write_corrupt(Path(path), 1)
    train, _, _ = D.make_loaders(data, 8, 1, False, 0)
    with pytest.raises(D.DataError) as info:
        next(iter(train))
    diag = info.value.diagnostic
    assert diag.code == "E368" and diag.hint == D.DECODE_HINT
    assert diag.loc.file.startswith(str(folder / "train")) and (diag.loc.line, diag.loc.col) == (1, 1)
    assert "Traceback" not in format_text(diag) and "\n" not in diag.message


def test_data_error_rebuilt_from_text_without_a_diagnostic_line() -> None:
    diag = D.DataError("Caught OSError in DataLoader worker process 0.\nOriginal Traceback:\n  boom").diagnostic
    assert (diag.code, diag.loc, diag.message) == ("E368", CMDLINE, "boom")


# ------------------------------------------------------------------------------------ packages (E360)


def _forget(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """``import NAME`` fails as for a package that is not installed (restored after the test). Loaded
    submodules stay: dropping torch's would leave its live objects without their modules."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def _versions(monkeypatch: pytest.MonkeyPatch, tv_needs: str | None = None, **found: str) -> None:
    monkeypatch.setattr(extras, "installed_version", lambda dist: found.get(dist))
    reqs = {"torchvision": [f"torch (=={tv_needs})"]} if tv_needs else {}
    monkeypatch.setattr(extras, "declared_requirements", lambda dist: reqs.get(dist, []))


def _vision_problem() -> Diagnostic:
    with pytest.raises(D.DataError) as info:
        D.require_vision()
    diag = info.value.diagnostic
    assert diag.code == "E360" and diag.loc == CMDLINE and "Traceback" not in format_text(diag)
    return diag


def test_require_vision_passes_here() -> None:
    D.require_vision()


def test_torchvision_missing_beside_a_pypi_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    _versions(monkeypatch, torch="2.14.1")
    _forget(monkeypatch, "torchvision")
    diag = _vision_problem()
    assert diag.message == "archdsl train: torchvision is not installed"
    assert diag.hint == "pip install torchvision==0.29.1"


def test_torchvision_missing_beside_a_local_torch_build(monkeypatch: pytest.MonkeyPatch) -> None:
    _versions(monkeypatch, torch="2.13.0+cpu")
    _forget(monkeypatch, "torchvision")
    assert _vision_problem().hint == extras.REFERENCE_VENV


def test_torchvision_for_another_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    _versions(monkeypatch, tv_needs="2.14.1", torch="2.13.0+cpu", torchvision="0.29.1")
    diag = _vision_problem()
    assert diag.message == ("archdsl train: torchvision 0.29.1 is built for torch 2.14.1, "
                            "not the installed torch 2.13.0+cpu")
    assert diag.hint == extras.REFERENCE_VENV


def test_pillow_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget(monkeypatch, "PIL")
    diag = _vision_problem()
    assert (diag.message, diag.hint) == ("archdsl train: Pillow (PIL) is not installed", "pip install pillow")


def test_torch_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    _versions(monkeypatch)
    _forget(monkeypatch, "torch")
    diag = _vision_problem()
    assert (diag.message, diag.hint) == ("archdsl train: PyTorch is not installed", "pip install '.[train]'")


# ------------------------------------------------------------------------------------ a good folder


def test_good_folder_opens(folder: Path) -> None:
    (folder / "train" / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    (folder / "train" / "class_1" / "notes.txt").write_text("ignored")
    data = D.open_imagefolder(str(folder), SHAPE)
    assert data.classes == ["class_0", "class_1", "class_2"] and data.skipped == []
    assert (len(data.train), len(data.val)) == (120, 30)
    assert data.train.targets == [k for k in range(3) for _ in range(40)]
    x, y = data.train[41]
    assert (tuple(x.shape), x.dtype, y) == ((3, 16, 16), torch.float32, 1)


@pytest.mark.parametrize(("shape", "channels", "size"), [
    ((1, 16, 16), 3, 16), ((3, 16, 16), 1, 16), ((3, 12, 12), 3, 20), ((1, 96, 80), 1, 16)])
def test_samples_take_the_spec_input_shape(tmp_path: Path, shape, channels, size) -> None:
    root = make_imagefolder(tmp_path / "data", per_class=4, size=size, channels=channels)
    for augment in (True, False):
        data = D.open_imagefolder(str(root), shape, augment=augment)
        assert tuple(data.train[0][0].shape) == shape and tuple(data.val[3][0].shape) == shape


def _expected(path: str, mode: str) -> torch.Tensor:
    """ToTensor + the normalization, computed by hand."""
    pixels = np.asarray(Image.open(path).convert(mode), dtype=np.float32) / 255.0
    pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1).transpose(2, 0, 1)
    mean, std = (D.IMAGENET_MEAN, D.IMAGENET_STD) if mode == "RGB" else ((0.5,), (0.5,))
    return (torch.from_numpy(pixels) - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


@pytest.mark.parametrize(("channels", "mode"), [(3, "RGB"), (1, "L")])
def test_validation_images_are_normalized_unchanged(tmp_path: Path, channels: int, mode: str) -> None:
    root = make_imagefolder(tmp_path / "data", per_class=4, channels=3)
    data = D.open_imagefolder(str(root), (channels, 16, 16))
    for i in (0, 5):
        torch.testing.assert_close(data.val[i][0], _expected(data.val.samples[i][0], mode))


def test_augmentation_on_and_off(folder: Path) -> None:
    off = D.open_imagefolder(str(folder), SHAPE, augment=False)
    on = D.open_imagefolder(str(folder), SHAPE, augment=True)
    # off: the training images are the validation transform's, whatever the epoch key
    assert all(torch.equal(off.train[(key, 0)][0], _expected(off.train.samples[0][0], "RGB")) for key in range(5))
    # on: a function of (epoch key, index): the same key gives the same image, other keys other crops/flips
    views = [on.train[(key, 0)][0] for key in range(8)]
    assert torch.equal(views[3], on.train[(3, 0)][0])
    assert len({v.numpy().tobytes() for v in views}) > 1
    unaugmented = _expected(on.train.samples[0][0], "RGB")
    assert any(not torch.equal(v, unaugmented) for v in views)


def test_augmentation_leaves_the_global_rng_alone(folder: Path) -> None:
    data = D.open_imagefolder(str(folder), SHAPE)
    train, _, _ = D.make_loaders(data, 16, 0, False, 0)
    state = torch.get_rng_state()
    for _ in train:
        pass
    assert torch.equal(torch.get_rng_state(), state)


# ------------------------------------------------------------------------------------ loaders


def _epoch(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in loader]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))


def test_loaders_are_deterministic_with_a_seed(folder: Path) -> None:
    data = D.open_imagefolder(str(folder), SHAPE)
    first, val1, sampler = D.make_loaders(data, 16, 0, False, 7)
    second, val2, _ = D.make_loaders(data, 16, 0, False, 7)
    other, _, _ = D.make_loaders(data, 16, 0, False, 8)
    assert sampler is None
    e1, e2 = _epoch(first), _epoch(second)
    assert _same(e1, e2) and not _same(e1, _epoch(other))
    assert not _same(_epoch(first), e1)  # the next epoch: another order and other augmentations
    assert _same(_epoch(val1), _epoch(val2))
    assert [y.tolist() for _, y in val1] == [data.val.targets[i:i + 16] for i in range(0, 30, 16)]


def test_reseeding_the_generator_replays_an_epoch(folder: Path) -> None:
    """How archdsl train resumes: each epoch reseeds the loader's generator from (seed, epoch)."""
    data = D.open_imagefolder(str(folder), SHAPE)
    train, _, _ = D.make_loaders(data, 16, 0, False, 0)
    train.generator.manual_seed(1234)
    once = _epoch(train)
    _epoch(train)
    train.generator.manual_seed(1234)
    assert _same(_epoch(train), once)


def test_workers_do_not_change_the_batches(folder: Path) -> None:
    data = D.open_imagefolder(str(folder), SHAPE)
    in_process, _, _ = D.make_loaders(data, 16, 0, False, 3)
    with_workers, _, _ = D.make_loaders(data, 16, 2, False, 3)
    assert _same(_epoch(in_process), _epoch(with_workers))
    del with_workers  # its persistent workers end now, not at interpreter exit


@pytest.mark.parametrize(("images", "batch", "steps"), [(41, 8, 5), (40, 8, 5), (42, 8, 6), (3, 8, 1), (1, 8, 1)])
def test_a_last_batch_of_one_image_is_dropped(tmp_path: Path, images: int, batch: int, steps: int) -> None:
    root = make_imagefolder(tmp_path / "data", classes=1, per_class=images, val_per_class=1)
    train, _, _ = D.make_loaders(D.open_imagefolder(str(root), SHAPE), batch, 0, False, 0)
    assert len(train) == steps and len(list(train)) == steps


def test_distributed_sampler_shards_the_training_set(folder: Path) -> None:
    from torch.utils.data import DistributedSampler

    data = D.open_imagefolder(str(folder), SHAPE)
    shards, orders = [], []
    for rank in range(2):
        train, val, sampler = D.make_loaders(data, 16, 0, True, 0, num_replicas=2, rank=rank)
        assert isinstance(sampler, DistributedSampler) and train.sampler is sampler
        assert (sampler.num_replicas, sampler.rank, len(train)) == (2, rank, math.ceil(60 / 16))
        assert len(val.dataset) == 30 and sum(len(y) for _, y in val) == 30  # every rank validates on all
        shards.append([i for _, i in sampler])
        sampler.set_epoch(1)
        orders.append([i for _, i in sampler])
        assert sum(len(y) for _, y in train) == 60
    assert sorted(shards[0] + shards[1]) == list(range(120))
    assert shards[0] != orders[0]  # set_epoch reshuffles


def test_distributed_augmentation_follows_seed_and_epoch(folder: Path) -> None:
    data = D.open_imagefolder(str(folder), SHAPE)
    runs = []
    for _ in range(2):
        train, _, sampler = D.make_loaders(data, 16, 0, True, 5, num_replicas=2, rank=1)
        sampler.set_epoch(3)
        runs.append(_epoch(train))
    assert _same(*runs)
