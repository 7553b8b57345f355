"""The embedded class-conditional diffusion generator: network, training, sampling, backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from synthaug.data import ImageDataset, load_dataset
from synthaug.errors import ConfigError
from synthaug.generate import generate_dataset
from synthaug.generate.backends import ImageRequest, make_backend
from synthaug.generate.ddpm.pipeline import DiffusionGenerator, default_generator_dir
from synthaug.generate.ddpm.schedule import DiffusionSchedule, ScheduleConfig
from synthaug.generate.ddpm.train import GeneratorTrainingConfig, train_generator
from synthaug.generate.ddpm.unet import ClassConditionalUNet, UNetConfig

TINY_UNET = UNetConfig(block_channels=(8, 16), layers_per_block=1, num_classes=2)
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
]


def tiny_dataset(n_per_class: int = 16, side: int = 8) -> ImageDataset:
    """Two seeded classes of ``side x side`` images: bright left half vs bright right half."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, size=(2 * n_per_class, side, side), dtype=np.uint8)
    images[:n_per_class, :, : side // 2] += 180
    images[n_per_class:, :, side // 2 :] += 180
    labels = np.repeat([0, 1], n_per_class)
    return ImageDataset.from_arrays(images, labels, ["left", "right"], name="halves")


def random_generator(classes: list[str], image_size: int = 12) -> DiffusionGenerator:
    """A generator with random (not zero-initialised) weights, so outputs depend on everything."""
    torch.manual_seed(0)
    unet = ClassConditionalUNet(UNetConfig(block_channels=(8, 16), layers_per_block=1, num_classes=len(classes)))
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.normal_(0, 0.2)
    return DiffusionGenerator(unet.eval(), classes, image_size, ScheduleConfig())


@pytest.mark.parametrize(
    ("channels", "side", "patch_size", "levels"),
    [(1, 28, 2, (8, 16, 16)), (3, 12, 2, (8, 16)), (1, 10, 1, (8, 16, 16))],
)
def test_unet_keeps_the_image_shape(channels, side, patch_size, levels):
    unet = ClassConditionalUNet(
        UNetConfig(image_channels=channels, num_classes=3, block_channels=levels, patch_size=patch_size)
    )
    x = torch.randn(2, channels, side, side)
    out = unet(x, torch.tensor([0, 999]), torch.tensor([1, 3]))  # 3 is the null class
    assert out.shape == x.shape


@pytest.mark.slow
def test_training_steps_reduce_the_loss_on_a_fixed_batch():
    data = tiny_dataset()
    images = torch.tensor(data.as_array()).permute(0, 3, 1, 2).float() / 127.5 - 1
    labels = torch.tensor(data.targets)
    schedule = DiffusionSchedule(ScheduleConfig())
    torch.manual_seed(0)
    unet = ClassConditionalUNet(TINY_UNET)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:  # same timesteps, noise and label dropout every call
        return schedule.training_loss(unet, images, labels, torch.Generator().manual_seed(1), 0.1, unet.null_class)

    before = loss().item()
    for _ in range(15):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < 0.7 * before


@pytest.mark.slow
def test_train_generator_resumes_to_the_same_weights(tmp_path):
    data = tiny_dataset()
    settings = {"batch_size": 8, "checkpoint_every": 2, "learning_rate": 1e-3}
    straight = train_generator(
        data, tmp_path / "straight", training=GeneratorTrainingConfig(steps=4, **settings), unet=TINY_UNET
    )
    first = train_generator(
        data, tmp_path / "resumed", training=GeneratorTrainingConfig(steps=2, **settings), unet=TINY_UNET
    )
    second = train_generator(
        data, tmp_path / "resumed", training=GeneratorTrainingConfig(steps=4, **settings), unet=TINY_UNET
    )
    assert (straight.resumed_from, first.steps, second.resumed_from, second.steps) == (0, 2, 2, 4)
    for name in ("checkpoint.safetensors", "model.safetensors"):
        a, b = load_file(tmp_path / "straight" / name), load_file(tmp_path / "resumed" / name)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{name}:{key}")
    config = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert config["classes"] == ["left", "right"] and config["image_size"] == 8
    assert config["training"]["steps"] == 4 and config["training"]["data"]["name"] == "halves"
    assert not list(tmp_path.glob("*/.*.partial"))

    with pytest.raises(ConfigError, match="other data or settings"):
        train_generator(
            data, tmp_path / "resumed", training=GeneratorTrainingConfig(steps=6, **{**settings, "batch_size": 4}),
            unet=TINY_UNET,
        )


def test_sampling_depends_only_on_seed_and_label():
    generator = random_generator(["a", "b", "c"])
    together = generator.sample(["a", "b", "c", "a"], [1, 2, 3, 4], steps=3, guidance_scale=2.0)
    apart = generator.sample(["c", "b", "a", "a"], [3, 9, 1, 1], steps=3, guidance_scale=2.0, batch_size=3)
    assert together.shape == (4, 12, 12, 1) and together.dtype == np.uint8
    np.testing.assert_array_equal(together[2], apart[0])
    np.testing.assert_array_equal(together[0], apart[2])
    np.testing.assert_array_equal(apart[2], apart[3])
    assert not np.array_equal(together[0], together[3])  # another seed, another image
    unguided = generator.sample(["a"], [1], steps=3, guidance_scale=1.0)
    assert not np.array_equal(unguided[0], together[0])
    mixed = generator.sample(["a", "a"], [1, 1], steps=3, guidance_scale=[1.0, 2.0])  # one scale per image
    np.testing.assert_array_equal(mixed, np.stack([unguided[0], together[0]]))


def test_saved_generator_loads_and_samples_the_same(tmp_path):
    generator = random_generator(["a", "b"])
    generator.save(tmp_path / "gen")
    loaded = DiffusionGenerator.load(tmp_path / "gen")
    assert loaded.classes == ["a", "b"] and loaded.image_size == 12
    # float16 storage: the loaded weights are the saved ones rounded, the images nearly equal.
    original = generator.sample(["a", "b"], [5, 6], steps=3, guidance_scale=1.5).astype(int)
    reloaded = loaded.sample(["a", "b"], [5, 6], steps=3, guidance_scale=1.5).astype(int)
    assert np.abs(original - reloaded).mean() < 2
    with pytest.raises(ConfigError, match="not a ddpm generator"):
        DiffusionGenerator.load(tmp_path)


class GaussianDenoiser(torch.nn.Module):
    """The exact v-prediction for data ``x_0 ~ N(mean, std^2)`` per pixel (no network)."""

    def __init__(self, schedule: DiffusionSchedule, mean: float, std: float) -> None:
        super().__init__()
        self.schedule, self.mean, self.std = schedule, mean, std

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        alpha_bar = self.schedule.alpha_bar[timesteps].double()[:, None, None, None]
        alpha, sigma = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
        x = x.double()
        # E[x_0 | x_t] for a Gaussian prior, then v = alpha eps - sigma x_0 with eps = (x_t - alpha x_0) / sigma.
        clean = self.mean + alpha * self.std**2 / (alpha**2 * self.std**2 + sigma**2) * (x - alpha * self.mean)
        return (alpha * (x - alpha * clean) / sigma - sigma * clean).float()


def test_dpm_solver_2m_converges_at_second_order_and_ddim_at_first():
    # For Gaussian data the probability-flow ODE is solved in closed form: the standardised
    # x_t = (x_t - alpha mean) / sqrt(alpha^2 std^2 + sigma^2) stays constant along it.
    schedule = DiffusionSchedule(ScheduleConfig())
    mean, std = 0.1, 0.2
    model = GaussianDenoiser(schedule, mean, std)
    noise = torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    alpha_bar = float(schedule.alpha_bar[999])
    exact = mean + std * (noise - alpha_bar**0.5 * mean) / (alpha_bar * std**2 + 1 - alpha_bar) ** 0.5
    labels = torch.zeros(64, dtype=torch.long)

    def error(solver: str, steps: int) -> float:
        images = schedule.sample(model, noise, labels, steps, guidance_scale=1.0, null_class=1, solver=solver)
        return float((images - exact).abs().max())

    # Doubling the steps halves DDIM's error (first order) and quarters DPM-Solver++(2M)'s.
    ddim_50, ddim_100 = error("ddim", 50), error("ddim", 100)
    dpm_50, dpm_100 = error("dpm-solver++2m", 50), error("dpm-solver++2m", 100)
    assert 1.6 < ddim_50 / ddim_100 < 2.5
    assert dpm_50 / dpm_100 > 3.5
    assert dpm_100 < 0.1 * ddim_100 < 3e-3
    with pytest.raises(ConfigError, match="solver 'euler' is unknown"):
        schedule.sample(model, noise, labels, 2, guidance_scale=1.0, null_class=1, solver="euler")


@pytest.mark.slow
def test_the_solver_comes_from_the_generator_config_and_ddim_when_it_names_none(tmp_path):
    generator = random_generator(["a", "b"])
    generator.sampling_defaults = {"steps": 4, "guidance_scale": 2.0}  # a config from before DPM-Solver++
    assert generator.default_solver == "ddim"
    ddim = generator.sample(["a", "b"], [5, 6])
    np.testing.assert_array_equal(ddim, generator.sample(["a", "b"], [5, 6], solver="ddim"))
    generator.sampling_defaults = {**generator.sampling_defaults, "solver": "dpm-solver++2m"}
    second_order = generator.sample(["a", "b"], [5, 6])
    np.testing.assert_array_equal(second_order, generator.sample(["a", "b"], [5, 6], solver="dpm-solver++2m"))
    assert not np.array_equal(second_order, ddim)
    generator.sampling_defaults = {**generator.sampling_defaults, "solver": "heun"}
    with pytest.raises(ConfigError, match="solver 'heun' in the generator config is unknown"):
        generator.sample(["a"], [1])


def test_labels_resolve_by_name_or_prompt_and_unknown_ones_list_the_known():
    generator = random_generator(FASHION_CLASSES)
    assert generator.class_index("trouser") == 1
    assert generator.class_in_prompt("a photo of a Trouser on a table") == 1
    assert generator.class_in_prompt("a studio shot of a T-shirt/top") == 0  # not also "Shirt"
    assert generator.class_in_prompt("a photo of a shirt") == 6
    assert generator.class_in_prompt("a photo of a cat") is None
    with pytest.raises(ConfigError, match="several classes"):
        generator.class_in_prompt("a Bag next to a Sandal")
    with pytest.raises(ConfigError, match="Ankle boot"):
        generator.class_index("Cat")


def test_backend_rejects_unknown_labels_before_making_anything():
    backend = make_backend("ddpm")
    known = ImageRequest("pants", 0, 0, seed=1, prompt="a photo of a Trouser")
    unknown = ImageRequest("Cat", 1, 0, seed=2, prompt="a photo of a Cat")
    (result,) = backend.generate([known])
    assert result.extra["class"] == "Trouser"
    results = backend.generate([known, unknown])
    with pytest.raises(ConfigError, match=r"unknown to the ddpm generator.*T-shirt/top, Trouser"):
        next(results)
    with pytest.raises(ConfigError, match="28x28"):
        backend.validate({"size": "64x64"})
    with pytest.raises(ConfigError, match="steps"):
        backend.validate({"steps": 0})


def test_engine_refuses_an_unknown_class_before_writing_anything(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"'Cat' is unknown to the ddpm generator"):
        generate_dataset(out, ["Trouser", "Cat"], 2, backend="ddpm", prompt="a photo of a {label}")
    assert not out.exists() or not any(out.iterdir())
    # Corrected classes then run in the same folder without --extend.
    summary = generate_dataset(out, ["Trouser"], 1, backend="ddpm", params={"steps": 2})
    assert summary["generated"] == 1


def test_shipped_generator_through_the_engine(tmp_path):
    assert (default_generator_dir() / "CARD.md").is_file()
    summary = generate_dataset(
        tmp_path / "out", ["Trouser", "Bag"], 3, backend="ddpm", seed=3, params={"steps": 4, "guidance_scale": 2.0}
    )
    assert summary["generated"] == 6
    dataset = load_dataset(tmp_path / "out")
    pixels = dataset.as_array()
    assert pixels.shape == (6, 28, 28, 1) and pixels.std() > 10
    rows = [json.loads(line) for line in (tmp_path / "out" / "metadata.jsonl").read_text().splitlines()]
    assert {row["model"] for row in rows} == {"synthaug/ddpm-fashion-mnist"}
    assert {row["extra"]["class"] for row in rows} == {"Trouser", "Bag"}


@pytest.mark.slow
def test_train_generator_cli_trains_and_continues(tmp_path):
    import synthaug.cli.main  # noqa: F401  (registers the commands)
    from synthaug.cli._app import app

    data = tiny_dataset(n_per_class=4)
    for index, (image, label) in enumerate(data):
        folder = tmp_path / "data" / data.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{index}.png")
    arguments = ["train-generator", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "gen")]
    arguments += ["--batch-size", "4", "--checkpoint-every", "1", "--block-channels", "8,16"]
    runner = CliRunner()
    first = runner.invoke(app, [*arguments, "--steps", "2"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, [*arguments, "--steps", "3"])
    assert second.exit_code == 0, second.output
    assert "continued from step 2" in second.output
    third = runner.invoke(app, [*arguments, "--steps", "3"])
    assert third.exit_code == 0 and "already trained to step 3" in third.output
    generator = DiffusionGenerator.load(tmp_path / "gen")
    assert generator.classes == ["left", "right"] and generator.training_record["steps"] == 3
    backend = make_backend("ddpm", str(tmp_path / "gen"))
    (image,) = backend.generate([ImageRequest("right", 1, 0, seed=0, prompt="right", params={"steps": 2})])
    assert image.image.size == (8, 8)
