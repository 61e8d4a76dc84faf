"""Recipes are data: every number a paper gives lands in the built optimizer, schedule, loss,
augmentation and Trainer; a bad recipe gets a located diagnostic, never a traceback.

Expected values are the papers' (Krizhevsky 2012 §5, Simonyan & Zisserman 2014 §3.1,
Szegedy 2014 §5-6, Szegedy 2015 §7-8 and Table 3, He 2015 §3.4), written out here.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision.transforms import v2

import archlang
from archlang.diagnostics import SpecError
from archlang.train import augment, optim
from archlang.train.module import SpecModule
from archlang.train.recipes import (
    OPTIMIZER_FIELDS,
    SCHEDULE_FIELDS,
    Augment,
    bundled_recipes,
    key_positions,
    load_recipe,
    parse_override,
    parse_recipe,
)
from archlang.train.run import TrainOptions, _averaging_kwargs, make_trainer, spec_params

ROOT = Path(__file__).resolve().parent.parent


def _built(name: str):
    recipe = load_recipe(name)
    model = torch.nn.Linear(4, 3)
    optimizer = optim.make_optimizer(model.parameters(), recipe)
    return recipe, optimizer, optim.make_scheduler(optimizer, recipe)


def _lr_after(optimizer, scheduler, epochs: int) -> float:
    for _ in range(epochs):
        optimizer.step()
        scheduler.step()
    return optimizer.param_groups[0]["lr"]


def _transforms(recipe, size: int) -> list:
    return list(augment.train_transform(recipe.augment, size, 3, from_pil=True).transforms)


def _flatten(transforms):
    for t in transforms:
        if isinstance(t, v2.Compose):
            yield from _flatten(t.transforms)
        else:
            yield t


def test_bundled_recipes_are_the_papers_and_cite_them():
    assert set(bundled_recipes()) == {"alexnet", "vgg", "googlenet", "inception_v3", "resnet", "demo"}
    for name in bundled_recipes():
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.source
    assert "Krizhevsky" in load_recipe("alexnet").source
    assert "Table 3" in load_recipe("inception_v3").source


def test_every_optimizer_and_schedule_name_has_a_row():
    assert set(optim.OPTIMIZERS) == set(OPTIMIZER_FIELDS)
    assert set(optim.SCHEDULES) == set(SCHEDULE_FIELDS)
    assert set(augment.TRAIN_STEPS) <= set(Augment.model_fields)


def test_inception_v3_rmsprop_schedule_clipping_smoothing(tmp_path):
    recipe, opt, sched = _built("inception_v3")
    assert type(opt) is torch.optim.RMSprop
    group = opt.param_groups[0]
    assert group["eps"] == 1.0 and group["alpha"] == 0.9 and group["lr"] == 0.045
    # "decayed every two epochs using an exponential rate of 0.94"
    assert _lr_after(opt, sched, 1) == pytest.approx(0.045)
    assert _lr_after(opt, sched, 1) == pytest.approx(0.045 * 0.94)
    assert _lr_after(opt, sched, 2) == pytest.approx(0.045 * 0.94**2)
    assert recipe.batch_size == 32 and recipe.max_epochs == 100
    module = SpecModule(torch.nn.Linear(4, 3), recipe, 3)
    assert module.train_criterion.label_smoothing == 0.1
    trainer = make_trainer(recipe, TrainOptions(progress=False), tmp_path)
    assert trainer.gradient_clip_val == 2.0 and trainer.gradient_clip_algorithm == "norm"
    assert recipe.spec["aux_logits"] is True
    crop = next(t for t in _flatten(_transforms(recipe, 299)) if isinstance(t, v2.RandomResizedCrop))
    assert tuple(crop.size) == (299, 299)


def test_googlenet_sgd_4_percent_every_8_epochs_aux_03_polyak_crops(tmp_path):
    recipe, opt, sched = _built("googlenet")
    assert type(opt) is torch.optim.SGD and opt.param_groups[0]["momentum"] == 0.9
    lr = opt.param_groups[0]["lr"]
    assert _lr_after(opt, sched, 7) == pytest.approx(lr)
    assert _lr_after(opt, sched, 1) == pytest.approx(lr * 0.96)
    assert _lr_after(opt, sched, 8) == pytest.approx(lr * 0.96**2)
    # aux losses weighted 0.3: loss = CE(main) + 0.3 * (CE(aux2) + CE(aux1))
    module = SpecModule(torch.nn.Linear(4, 3), recipe, 3)
    y = torch.tensor([0, 2])
    main, aux2, aux1 = torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3)
    ce = torch.nn.functional.cross_entropy
    loss, _ = module.loss((main, aux2, aux1), y)
    assert loss.item() == pytest.approx((ce(main, y) + 0.3 * ce(aux2, y) + 0.3 * ce(aux1, y)).item())
    # Polyak averaging: AveragedModel's default running mean (no avg_fn given)
    assert recipe.averaging.kind == "polyak" and _averaging_kwargs(recipe) == {}
    trainer = make_trainer(recipe, TrainOptions(progress=False), tmp_path)
    assert any(type(c).__name__ == "WeightAveraging" for c in trainer.callbacks)
    steps = list(_flatten(_transforms(recipe, 224)))
    crop = next(t for t in steps if isinstance(t, v2.RandomResizedCrop))
    assert crop.scale == (0.08, 1.0) and crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert any(isinstance(t, v2.RandomHorizontalFlip) for t in steps)
    assert any(isinstance(t, v2.ColorJitter) for t in steps)  # photometric distortions


def test_alexnet_sgd_plateau_dropout_crops_pca():
    recipe, opt, sched = _built("alexnet")
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.9, 0.0005)
    assert recipe.batch_size == 128
    assert type(sched) is torch.optim.lr_scheduler.ReduceLROnPlateau
    assert sched.factor == 0.1 and sched.mode == "max"  # ÷10 when validation accuracy stalls
    assert spec_params("googlenet", recipe, TrainOptions(), 10)["dropout"] == 0.5
    steps = list(_flatten(_transforms(recipe, 224)))
    assert [type(t) for t in steps[2:4]] == [v2.Resize, v2.RandomCrop]  # 224 crops of 256
    assert steps[2].size == [256] and steps[3].size == (224, 224)
    assert any(isinstance(t, v2.RandomHorizontalFlip) for t in steps)
    assert next(t for t in steps if isinstance(t, augment.PCALighting)).std == 0.1


def test_vgg_scale_jitter_256_512():
    recipe, opt, sched = _built("vgg")
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.9, 0.0005)
    assert recipe.batch_size == 256 and recipe.spec["dropout"] == 0.5
    assert type(sched) is torch.optim.lr_scheduler.ReduceLROnPlateau and sched.factor == 0.1
    jitter = next(t for t in _flatten(_transforms(recipe, 224)) if isinstance(t, v2.RandomResize))
    assert (jitter.min_size, jitter.max_size) == (256, 513)  # S uniform in [256, 512]


def test_resnet_sgd_01_wd_1e4_batch_256():
    recipe, opt, sched = _built("resnet")
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.1, 0.9, 0.0001)
    assert recipe.batch_size == 256
    assert type(sched) is torch.optim.lr_scheduler.ReduceLROnPlateau and sched.factor == 0.1
    jitter = next(t for t in _flatten(_transforms(recipe, 224)) if isinstance(t, v2.RandomResize))
    assert (jitter.min_size, jitter.max_size) == (256, 481)


def test_plateau_divides_by_10_when_accuracy_stalls():
    recipe, opt, sched = _built("resnet")
    for accuracy in [0.5, 0.6] + [0.6] * (recipe.schedule.patience + 1):
        sched.step(accuracy)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)


def test_sizes_scale_with_the_spec_input():
    recipe = load_recipe("alexnet")
    steps = list(_flatten(_transforms(recipe, 32)))
    assert steps[2].size == [round(256 * 32 / 224)] and steps[3].size == (32, 32)


def test_pca_lighting_adds_one_colour_per_image():
    torch.manual_seed(0)
    image = torch.zeros(3, 4, 4)
    out = augment.PCALighting(0.1)(image)
    assert torch.equal(out, out[:, :1, :1].expand(3, 4, 4))  # the same RGB shift on every pixel
    assert out.abs().max() > 0


GOOD = 'name = "x"\nsource = "y"\nmax_epochs = 3\nbatch_size = 8\n\n[optimizer]\nname = "sgd"\nlr = 0.1\n'


def _error(text: str):
    with pytest.raises(SpecError) as err:
        parse_recipe(text, "bad.toml")
    return err.value.diagnostics


def test_unknown_key_is_located_at_the_key():
    (d,) = _error(GOOD + "momentun = 0.9\n")
    assert d.code == "E802" and "optimizer.momentun" in d.message
    assert (d.span.file, d.span.line, d.span.col) == ("bad.toml", 9, 1)


def test_ill_typed_value_is_located_at_the_value():
    (d,) = _error(GOOD.replace("batch_size = 8", 'batch_size = "eight"'))
    assert d.code == "E803" and (d.span.line, d.span.col) == (4, 14)


def test_field_the_optimizer_does_not_take_is_located():
    (d,) = _error(GOOD + "alpha = 0.9\n")  # RMSProp's decay on SGD
    assert d.code == "E802" and "takes no alpha" in d.message and d.span.line == 9


def test_out_of_range_and_missing_and_syntax():
    (d,) = _error(GOOD.replace("lr = 0.1", "lr = -1.0"))
    assert d.code == "E803" and d.span.line == 8
    (d,) = _error(GOOD.replace('source = "y"\n', ""))
    assert d.code == "E802" and "source" in d.message
    (d,) = _error(GOOD.replace("[optimizer]", "[optimizer"))
    assert d.code == "E801" and d.span.line == 6


def test_key_positions_of_tables_and_inline_tables():
    text = 'a = 1\n[t]\n  b = { c = 2 }\n[u.v]\nw="x"\n'
    pos = key_positions(text)
    assert pos[("a",)] == (1, 1, 5) and pos[("t", "b")] == (3, 3, 7) and pos[("u", "v", "w")][0] == 5


def test_overrides_are_toml_values():
    assert parse_override("optimizer.lr=0.5") == ("optimizer.lr", 0.5)
    assert parse_override("schedule.name=step") == ("schedule.name", "step")
    assert parse_override("augment.scale_jitter=[1, 2]") == ("augment.scale_jitter", [1, 2])
    recipe = load_recipe("demo", {"optimizer.lr": 0.5, "schedule.name": "constant"})
    assert recipe.optimizer.lr == 0.5 and recipe.schedule.name == "constant"


def test_cli_bad_recipe_is_a_located_error_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD + "nesterov = 1\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "archlang.cli.main",
            "train",
            str(ROOT / "examples" / "lenet5_small.arch"),
            "--recipe",
            str(bad),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1, run.stderr
    assert f"{bad}:9:12" in run.stderr and "Traceback" not in run.stderr
    assert "nesterov = 1" in run.stderr  # the source line is quoted


def test_cli_lists_recipes_without_importing_torch():
    code = (
        "import sys; from archlang.cli.main import main; sys.argv = ['archc', 'train', '--list-recipes']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "inception_v3" in run.stdout and "rmsprop" in run.stdout


def test_cosine_and_constant_schedules():
    recipe = load_recipe("demo")
    opt = optim.make_optimizer(torch.nn.Linear(2, 2).parameters(), recipe)
    sched = optim.make_scheduler(opt, recipe)
    lr = _lr_after(opt, sched, recipe.max_epochs // 2)
    assert lr == pytest.approx(0.05 * (1 + math.cos(math.pi / 2)) / 2)


def test_generated_module_file_stays_free_of_lightning():
    from archlang.backends.torch.codegen import emit

    source = emit(archlang.compile_spec(str(ROOT / "examples" / "tiny_inception.arch")))
    assert "lightning" not in source.lower() and "archlang.train" not in source
    namespace: dict = {}
    exec(compile(source, "tiny_inception.py", "exec"), namespace)  # a plain torch module file


def test_bad_override_names_the_command_line():
    with pytest.raises(SpecError) as err:
        load_recipe("demo", {"optimizer.lr": "fast"})
    (d,) = err.value.diagnostics
    assert d.code == "E803" and "command line" in d.message and "optimizer.lr" in d.message
