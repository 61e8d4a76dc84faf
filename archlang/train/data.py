"""Data: an ImageFolder tree (``DIR/train/<class>/...``, ``DIR/val/<class>/...``) or the offline
``digits`` demo (scikit-learn's bundled 8×8 digits, resized to the spec's input). Nothing is
downloaded.

The training loader is resumable mid-epoch: its sampler draws the epoch's permutation from
``(seed, epoch)`` alone and shards it across ranks itself (every ``world``-th index, as
``DistributedSampler`` does), and the loader's ``state_dict`` records how many batches of the
epoch were consumed, so a run restarted from a mid-epoch checkpoint sees exactly the batches
an uninterrupted run would. ``batch_size`` is global: each of ``world`` ranks takes
``batch_size // world`` of every batch, so 1 and N processes see the same global batches
(the last partial batch of an epoch is dropped).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from archlang.diagnostics import Diagnostic, SpecError, printable

from .augment import eval_transform, train_transform
from .recipes import Recipe

DIGITS_VAL_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


class DigitsDataset(Dataset):
    """scikit-learn's 1,797 8×8 digits as float images in [0, 1], resized (bilinear) to
    ``channels × size``; ``split`` is a fixed, stratified 80/20 train/val split."""

    def __init__(self, split: str, channels: int, size: tuple[int, int], transform=None):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        indices = list(range(len(digits.target)))
        train, val = train_test_split(
            indices, test_size=DIGITS_VAL_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=digits.target
        )
        chosen = sorted(train if split == "train" else val)
        images = torch.tensor(digits.images[chosen], dtype=torch.float32).unsqueeze(1) / 16.0
        images = torch.nn.functional.interpolate(images, size=size, mode="bilinear", align_corners=False)
        self.images = images.expand(-1, channels, -1, -1).contiguous()
        self.targets = torch.tensor(digits.target[chosen], dtype=torch.long)
        self.classes = [str(d) for d in range(10)]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = self.images[index]
        return (self.transform(image) if self.transform else image), self.targets[index]


class SeededSamples(Dataset):
    """``dataset[index]`` with the random augmentation drawn from a generator seeded by
    ``(seed, epoch, index)``: a sample's augmentation is a function of where it is in the run,
    not of the global RNG (which a prefetched batch would advance past a checkpoint). The
    sampler passes ``epoch * len + index``."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int):
        epoch, index = divmod(key, len(self.dataset))
        with torch.random.fork_rng(devices=[]):
            # modulo 2**63: torch takes no larger seed (a large recipe seed overflowed here);
            # every seed of a short run stays below it, so its draws are unchanged
            torch.manual_seed(((self.seed * 1_000_003 + epoch) * 1_000_003 + index) % 2**63)
            return self.dataset[index]


class EpochSampler(Sampler[int]):
    """This rank's share of the epoch: a permutation drawn from ``(seed, epoch)`` (or the
    identity), every ``world``-th index from ``rank``, minus the batches already consumed
    when resuming mid-epoch."""

    def __init__(self, size: int, *, shuffle: bool, seed: int, rank: int = 0, world: int = 1):
        self.size, self.shuffle, self.seed, self.rank, self.world = size, shuffle, seed, rank, world
        self.epoch = 0
        self.skip = 0  # indices to skip, in the epoch `skip_epoch` only
        self.skip_epoch = -1

    def set_epoch(self, epoch: int) -> None:  # called by Lightning before every epoch
        self.epoch = epoch

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.world))

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        mine = order[self.rank :: self.world]
        skip = self.skip if self.epoch == self.skip_epoch else 0
        self.skip, self.skip_epoch = 0, -1
        offset = self.epoch * self.size if self.shuffle else 0  # SeededSamples decodes it
        for index in mine[skip:]:
            yield offset + index


class ResumableLoader(DataLoader):
    """A DataLoader whose ``state_dict`` says how far into the epoch training got (Lightning
    saves it in checkpoints and restores it on ``--resume``)."""

    def __init__(self, *args, progress=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.progress = progress  # () -> (epoch, batches consumed in that epoch)

    def state_dict(self) -> dict:
        epoch, batches = self.progress() if self.progress else (0, 0)
        return {"epoch": epoch, "batches": batches}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.skip_epoch = state["epoch"]
        self.sampler.skip = state["batches"] * self.batch_size


@dataclass
class DataSpec:
    """Where the data comes from and what the network wants."""

    source: str  # "digits" or a directory
    channels: int
    size: tuple[int, int]


class BadImage(SpecError):
    """An image of the data folder that PIL cannot read; training stops and names the file.
    Built from a message alone, so a DataLoader worker can hand it back to the main process."""

    def __init__(self, message):
        if isinstance(message, str):
            # a worker's error comes back as "Caught BadImage ... Original Traceback ...":
            # keep the line that says which file and why
            found = re.search(r"cannot read image `.*", message)
            message = Diagnostic(
                code="E811",
                message=found.group(0) if found else message,
                help="remove or replace the file; every image of the data folder is read",
            )
        super().__init__(message)


def _image_folder(root: Path, split: str, channels: int, transform):
    from PIL import Image, UnidentifiedImageError
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import IMG_EXTENSIONS

    mode = "L" if channels == 1 else "RGB"

    def load(path):
        try:
            with open(path, "rb") as f:
                return Image.open(f).convert(mode)
        except UnidentifiedImageError:
            raise BadImage(
                f"cannot read image `{printable(str(path))}`: not an image PIL can read (empty, cut short or another format)"
            ) from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            # DecompressionBombError: PIL's own bound (about 179 megapixels) on one image
            reason = str(err).split("\n")[0][:200] or type(err).__name__
            raise BadImage(f"cannot read image `{printable(str(path))}`: {reason}") from None

    class Folder(ImageFolder):
        # torchvision walks with followlinks=True and no memory of where it has been: a
        # symlink loop recursed until memory ran out. Each real folder is visited once.
        @staticmethod
        def make_dataset(directory, class_to_idx=None, extensions=None, is_valid_file=None, **_):
            return image_files(Path(directory), class_to_idx, IMG_EXTENSIONS)

    return Folder(str(root / split), transform=transform, loader=load)


def image_files(split: Path, class_to_idx: dict[str, int], extensions) -> list[tuple[str, int]]:
    """``(path, class index)`` of every image under ``split/<class>/`` in torchvision's order,
    following symlinks but entering each real folder once. A class without images is E807."""
    samples = []
    for name, index in sorted(class_to_idx.items(), key=lambda item: item[1]):
        seen: set[tuple[int, int]] = set()
        found = []
        for folder, folders, files in os.walk(split / name, followlinks=True):
            try:
                stat = os.stat(folder)
            except OSError:  # a link that broke or loops in the kernel's count
                folders[:] = []
                continue
            key = (stat.st_dev, stat.st_ino)
            if key in seen:
                folders[:] = []  # os.walk descends into what is left in `folders`
                continue
            seen.add(key)
            found += [(folder, f) for f in files if f.lower().endswith(tuple(extensions))]
        if not found:
            raise SpecError(
                Diagnostic(
                    code="E807",
                    message=f"class folder `{printable(str(split / name))}` has no images",
                    help=f"images end in {', '.join(sorted({e.lower() for e in extensions}))}; "
                    "remove the folder or add its images",
                )
            )
        samples += [(os.path.join(folder, f), index) for folder, f in sorted(found)]
    return samples


def class_folders(split: Path) -> list[str]:
    """The class folder names of ``split`` (``DIR/train``), sorted; none is E807."""
    try:
        classes = sorted(entry.name for entry in os.scandir(split) if entry.is_dir())
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
        raise SpecError(Diagnostic(code="E807", message=f"cannot list `{printable(str(split))}`: {reason}")) from None
    if not classes:
        raise SpecError(
            Diagnostic(
                code="E807",
                message=f"`{printable(str(split))}` has no class folders",
                help="--data wants DIR/train/<class>/*.png and DIR/val/<class>/*.png, one folder per class",
            )
        )
    return classes


def check_data_dir(source: str) -> None:
    """Raise a :class:`SpecError` unless ``source`` is ``digits`` or an ImageFolder tree."""
    if source == "digits":
        return
    root = Path(source)
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        raise SpecError(
            Diagnostic(
                code="E807",
                message=f"`{source}` has no {' or '.join(f'{s}/' for s in missing)} folder",
                help="--data wants DIR/train/<class>/*.png and DIR/val/<class>/*.png, or `digits`",
            )
        )
    for split in ("train", "val"):
        class_folders(root / split)


def make_datasets(data: DataSpec, recipe: Recipe, split_names=("train", "val")):
    """``(train, val)`` datasets with the recipe's transforms."""
    side = data.size[0]
    if data.source == "digits":
        train_tf = train_transform(recipe.augment, side, data.channels, from_pil=False)
        val_tf = eval_transform(recipe.augment, side, data.channels, from_pil=False)
        return (
            DigitsDataset("train", data.channels, data.size, train_tf),
            DigitsDataset("val", data.channels, data.size, val_tf),
        )
    check_data_dir(data.source)
    root = Path(data.source)
    train = _image_folder(root, "train", data.channels, train_transform(recipe.augment, side, data.channels, True))
    val = _image_folder(root, "val", data.channels, eval_transform(recipe.augment, side, data.channels, True))
    if train.classes != val.classes:
        raise SpecError(
            Diagnostic(code="E807", message=f"train/ and val/ of `{data.source}` have different class folders")
        )
    return train, val


class SpecDataModule(L.LightningDataModule):
    def __init__(self, data: DataSpec, recipe: Recipe, batch_size: int, num_workers: int = 0):
        super().__init__()
        self.data, self.recipe, self.batch_size, self.num_workers = data, recipe, batch_size, num_workers
        self.train_set = self.val_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = make_datasets(self.data, self.recipe)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _per_rank_batch(self, world: int) -> int:
        if self.batch_size % world:
            raise SpecError(
                Diagnostic(
                    code="E808",
                    message=f"the global batch size {self.batch_size} does not split evenly over {world} processes",
                )
            )
        return self.batch_size // world

    def train_dataloader(self):
        rank, world = self._world()
        sampler = EpochSampler(len(self.train_set), shuffle=True, seed=self.recipe.seed, rank=rank, world=world)
        trainer = self.trainer

        def progress():
            loop = trainer.fit_loop.epoch_loop
            return trainer.current_epoch, loop.batch_progress.current.processed

        per_rank = self._per_rank_batch(world)
        return ResumableLoader(
            SeededSamples(self.train_set, self.recipe.seed),
            batch_size=per_rank,
            sampler=sampler,
            # a last partial batch would split unevenly over ranks (15 + 14 samples weigh as
            # 16 + 16): drop it, so N processes compute exactly the single process's batches
            drop_last=len(sampler) >= per_rank,
            num_workers=self.num_workers,
            progress=progress if trainer is not None else None,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self):
        rank, world = self._world()
        sampler = EpochSampler(len(self.val_set), shuffle=False, seed=0, rank=rank, world=world)
        return DataLoader(
            self.val_set, batch_size=self._per_rank_batch(world), sampler=sampler, num_workers=self.num_workers
        )

    @property
    def classes(self) -> list[str]:
        self.setup()
        return list(self.train_set.classes)
