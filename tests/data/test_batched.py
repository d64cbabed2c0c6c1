"""The device path runs the recipe albumentations runs: the same parameter distributions (KS and binomial tests on a
few thousand draws), the same pixels for the same parameters (within the stated grey levels), the same output
statistics, and one line for a transform it cannot run."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from scipy import stats

from fer_lightning.data.batched import BatchedPipeline, UnsupportedTransform, batched_step
from fer_lightning.data.synthetic import make_synthetic_faces
from fer_lightning.data.transforms import build_transform

DRAWS = 3000
SHAPE = (48, 48)
SIGNIFICANCE = 1e-3  # a test fails by chance about once in a thousand runs


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return make_synthetic_faces(10, np.random.default_rng(0))[0]  # (70, 48, 48) uint8


def albumentations_draws(transform: A.BasicTransform, key: str) -> np.ndarray:
    """``DRAWS`` of albumentations' own parameter ``key`` for a 48x48 face (the transform applied, p aside)."""
    transform.set_random_seed(1)
    return np.stack(
        [np.asarray(transform.get_params_dependent_on_data({"shape": SHAPE}, {})[key]) for _ in range(DRAWS)]
    )


def our_draws(transform: A.BasicTransform, key: str) -> np.ndarray:
    step = batched_step(transform)
    params = step.sample(DRAWS, *SHAPE, torch.Generator().manual_seed(2), torch.device("cpu"))
    return params[key].numpy()


def same_distribution(theirs: np.ndarray, ours: np.ndarray) -> None:
    """Each column (a matrix entry, a box coordinate) by a two-sample Kolmogorov-Smirnov test."""
    theirs, ours = theirs.reshape(DRAWS, -1), ours.reshape(DRAWS, -1)
    for column in range(theirs.shape[1]):
        if np.ptp(theirs[:, column]) == 0 and np.ptp(ours[:, column]) == 0:
            assert theirs[0, column] == pytest.approx(ours[0, column], abs=1e-5)
            continue
        p = stats.ks_2samp(theirs[:, column], ours[:, column]).pvalue
        assert p > SIGNIFICANCE, f"column {column}: KS p={p:.2g}"


GEOMETRIC = {
    "affine": A.Affine(
        rotate=(-15, 15), translate_percent=(-0.1, 0.1), shear=(-10, 10), scale=(0.9, 1.1), border_mode=4, p=1
    ),
    "affine_one_sided": A.Affine(rotate=(5, 20), translate_percent=(0.05, 0.2), shear=(2, 10), scale=(1.0, 1.2), p=1),
    "affine_px_keep_ratio": A.Affine(translate_px=(-4, 4), scale=(0.8, 1.2), keep_ratio=True, p=1),
    "rotate": A.Rotate(limit=10, border_mode=4, p=1),
}


@pytest.mark.parametrize("name", GEOMETRIC)
def test_affine_matrices_follow_albumentations(name: str) -> None:
    transform = GEOMETRIC[name]
    same_distribution(albumentations_draws(transform, "matrix")[:, :2], our_draws(transform, "matrix")[:, :2])


@pytest.mark.parametrize(
    "transform",
    [A.RandomResizedCrop(size=(48, 48), scale=(0.8, 1.0), p=1), A.RandomResizedCrop(size=(48, 48), p=1)],
    ids=["zoom", "default_scale"],
)
def test_resized_crop_boxes_follow_albumentations(transform: A.RandomResizedCrop) -> None:
    same_distribution(albumentations_draws(transform, "crop_coords"), our_draws(transform, "box"))


def test_random_crop_boxes_follow_albumentations() -> None:
    transform = A.RandomCrop(40, 40)
    same_distribution(albumentations_draws(transform, "crop_coords"), our_draws(transform, "box"))


@pytest.mark.parametrize(
    "transform",
    [A.Erasing(p=1), A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(0.1, 0.3), p=1)],
    ids=["erasing", "coarse_dropout"],
)
def test_erased_boxes_follow_albumentations(transform: A.BasicTransform) -> None:
    """Box sides, places and counts: albumentations lists a face's holes, the batch has a fixed number of slots."""
    transform.set_random_seed(1)
    theirs = [transform.get_params_dependent_on_data({"shape": SHAPE}, {})["holes"] for _ in range(DRAWS)]
    ours = our_draws(transform, "holes")
    ours = [face[face[:, 2] > face[:, 0]] for face in ours]  # the used slots
    for describe in (
        len,
        lambda h: h[:, 2] - h[:, 0],
        lambda h: h[:, 3] - h[:, 1],
        lambda h: h[:, 0],
        lambda h: h[:, 1],
    ):
        a = np.concatenate([np.atleast_1d(describe(h)) for h in theirs]).astype(float)
        b = np.concatenate([np.atleast_1d(describe(h)) for h in ours]).astype(float)
        assert stats.ks_2samp(a, b).pvalue > SIGNIFICANCE


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_face_is_changed_with_the_transforms_probability(p: float) -> None:
    for transform in (A.Affine(rotate=(-10, 10), p=p), A.HorizontalFlip(p=p), A.Erasing(p=p)):
        changed = int(our_draws(transform, "applied").sum())
        assert stats.binomtest(changed, DRAWS, p).pvalue > SIGNIFICANCE, type(transform).__name__


def test_a_face_not_changed_keeps_its_pixels(faces: np.ndarray) -> None:
    batch = torch.from_numpy(faces)[:, None].float()
    for transform in (A.Affine(rotate=(-10, 10), border_mode=4, p=0), A.RandomResizedCrop(size=(48, 48), p=0)):
        assert torch.equal(batch_step_output(transform, batch), batch)


def batch_step_output(transform: A.BasicTransform, batch: torch.Tensor) -> torch.Tensor:
    return batched_step(transform)(batch, torch.Generator().manual_seed(0))


# Largest difference in grey levels from albumentations (OpenCV) for the same parameters: OpenCV's warpAffine
# quantises source coordinates to 1/32 pixel and its weights to 15 bits; both round to whole levels.
SAME_PIXELS = {
    "affine": (A.Affine(rotate=(-15, 15), translate_percent=(-0.1, 0.1), shear=(-10, 10), scale=(0.9, 1.1),
                        border_mode=4, p=1), "matrix", 4, 0.2),
    "affine_constant_fill": (A.Affine(rotate=(-20, 20), scale=(0.8, 0.9), fill=128, p=1), "matrix", 4, 0.2),
    "rotate": (A.Rotate(limit=20, border_mode=4, p=1), "matrix", 3, 0.2),
    "resized_crop": (A.RandomResizedCrop(size=(48, 48), scale=(0.5, 1.0), p=1), "crop_coords", 1, 0.15),
    "random_crop": (A.RandomCrop(40, 40), "crop_coords", 0, 0),
    "erasing": (A.Erasing(fill=17, p=1), "holes", 0, 0),
    "coarse_dropout": (A.CoarseDropout(num_holes_range=(2, 4), fill=0, p=1), "holes", 0, 0),
}  # fmt: skip


OUR_NAMES = {"matrix": "matrix", "crop_coords": "box", "holes": "holes"}  # albumentations' parameter -> ours


@pytest.mark.parametrize("name", SAME_PIXELS)
def test_the_same_parameters_give_the_same_pixels(name: str, faces: np.ndarray) -> None:
    transform, key, most, mean = SAME_PIXELS[name]
    transform.set_random_seed(3)
    step = batched_step(transform)
    differences = []
    for face in faces:
        params = transform.get_params_dependent_on_data({"shape": SHAPE}, {})
        expected = transform.apply(face, **params, shape=SHAPE).astype(np.float32)
        value = torch.as_tensor(np.asarray(params[key]), dtype=torch.float32)[None]  # one face's, as a batch
        ours = step.apply(torch.from_numpy(face)[None, None].float(), {OUR_NAMES[key]: value})
        differences.append(np.abs(ours[0, 0].numpy() - expected))
    differences = np.stack(differences)
    assert differences.max() <= most and differences.mean() <= mean


@pytest.mark.parametrize("side", [40, 224])
def test_resize_and_normalize_give_the_same_values(side: int, faces: np.ndarray) -> None:
    compose = build_transform(side, 0.5134, 0.3066)  # Resize when the side is not 48, Normalize
    expected = np.stack([compose(image=face)["image"].numpy() for face in faces])
    ours = BatchedPipeline(compose)(torch.from_numpy(faces), torch.Generator()).numpy()
    assert np.abs(ours - expected).max() <= 1.01 / (0.3066 * 255)  # one grey level after the resize


@pytest.mark.parametrize("recipe", ["scratch_best", "vgg_khaireddin"])
def test_a_recipes_outputs_have_albumentations_statistics(recipe: str, faces: np.ndarray, make_cfg) -> None:
    """The whole train pipeline of a recipe from conf/: the mean and spread of its outputs, overall and per pixel."""
    from hydra.utils import instantiate

    cfg = make_cfg(f"experiment={recipe}", "data.on_device=true")
    datamodule = instantiate(cfg.data)
    compose = datamodule.transforms["train"]
    compose.set_random_seed(4)
    repeated = np.concatenate([faces] * 30)  # 2100 faces
    expected = np.stack([compose(image=face)["image"].numpy() for face in repeated])
    ours = BatchedPipeline(compose)(torch.from_numpy(repeated), torch.Generator().manual_seed(5)).numpy()
    assert ours.shape == expected.shape
    assert ours.mean() == pytest.approx(expected.mean(), abs=0.02)
    assert ours.std() == pytest.approx(expected.std(), rel=0.02)
    assert np.abs(ours.mean(0) - expected.mean(0)).mean() < 0.05  # per pixel, over 2100 faces


def test_ten_crop_training_gives_each_faces_ten_crops(faces: np.ndarray) -> None:
    compose = build_transform(48, 0.5, 0.25, (), crop_size=40, crop="random")
    pipeline = BatchedPipeline(compose, ten_crop_size=40)
    out = pipeline(torch.from_numpy(faces[:3]), torch.Generator())
    assert pipeline.views == 10 and out.shape == (30, 1, 40, 40)
    whole = (torch.from_numpy(faces[:3]).float() - 0.5 * 255) / (0.25 * 255)
    assert torch.allclose(out[0, 0], whole[0, :40, :40])  # the first face's top-left corner
    assert torch.allclose(out[5, 0], whole[0, :40, -40:].flip(-1))  # the mirrored face's top-left corner
    assert torch.allclose(out[10, 0], whole[1, :40, :40])  # the second face's crops follow


@pytest.mark.parametrize(
    ("transform", "named"),
    [
        (A.GaussianBlur(), "GaussianBlur is a transform"),
        (A.Affine(fit_output=True), "Affine with fit_output"),
        (A.Affine(border_mode=2), "Affine with border_mode=2"),
        (A.Erasing(fill="random"), "Erasing with fill='random'"),
    ],
)
def test_a_transform_the_device_path_cannot_run_is_named_with_the_fallback(
    transform: A.BasicTransform, named: str
) -> None:
    with pytest.raises(UnsupportedTransform, match=rf"{named}.*set data.on_device=false"):
        BatchedPipeline(A.Compose([transform]))
