"""The albumentations recipe of conf/data run on a whole batch on the training device, a parameter set per face.

The recipe stays written once, as albumentations transforms; ``batched_pipeline`` reads each transform's own settings
and executes it on a (N, 1, H, W) batch of float pixel values (0-255), drawing every face's parameters from the same
distributions albumentations draws them from (tests/data/test_batched.py compares both). Geometric steps sample the
source through ``grid_sample`` with ``align_corners=True``, where reflection padding is OpenCV's BORDER_REFLECT_101,
and round to whole grey levels after each step, as albumentations' uint8 images do.

Why not kornia.augmentation: its per-sample parameters follow its own conventions (shift as a fraction of the side
with no truncation to whole pixels, shear and scale drawn per axis by other rules, a crop-and-resize sampler without
albumentations' ten-try fallback), so the recipe would be a second recipe with other numbers; and it is one more
dependency. The ops here are a few tensor lines each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import albumentations as A
import cv2
import torch
import torch.nn.functional as F
from albumentations.pytorch import ToTensorV2
from torch import Tensor
from torchvision.transforms.v2.functional import ten_crop

Step = Callable[[Tensor, torch.Generator], Tensor]
Params = dict[str, Tensor]
BORDERS = {cv2.BORDER_REFLECT_101: "reflection", cv2.BORDER_REPLICATE: "border", cv2.BORDER_CONSTANT: "zeros"}
SAMPLING = {cv2.INTER_LINEAR: "bilinear", cv2.INTER_NEAREST: "nearest"}


class UnsupportedTransform(ValueError):
    """A transform of the recipe the device path cannot run: the run stops, naming it and the fallback key."""


def unsupported(transform: object, why: str) -> UnsupportedTransform:
    return UnsupportedTransform(
        f"data.on_device: {type(transform).__name__} {why}, which the batched device path does not run; "
        "set data.on_device=false to run the recipe in DataLoader workers"
    )


def uniform(low: float, high: float, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def integers(low: Tensor | int, high: Tensor | int, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """Uniform integers in [low, high], both ends included (Python's randint), elementwise."""
    u = torch.rand(n, generator=generator, device=device)
    return (low + torch.floor(u * (torch.as_tensor(high, device=device) - low + 1))).long()


def applied(p: float, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """Which faces a step with probability ``p`` changes, as albumentations' ``random() < p``."""
    return torch.rand(n, generator=generator, device=device) < p


def pixel_grid(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return xs, ys


def sample(images: Tensor, src_x: Tensor, src_y: Tensor, mode: str, padding: str, fill: float = 0.0) -> Tensor:
    """Each output pixel read at (src_x, src_y) (N, Ho, Wo) in the input's pixel coordinates, rounded to a grey
    level. A constant border of ``fill`` is zeros padding around the shifted image."""
    height, width = images.shape[-2:]
    grid = torch.stack((2 * src_x / max(width - 1, 1) - 1, 2 * src_y / max(height - 1, 1) - 1), dim=-1)
    shifted = images - fill if padding == "zeros" and fill else images
    out = F.grid_sample(shifted, grid, mode=mode, padding_mode=padding, align_corners=True)
    return (out + fill if padding == "zeros" and fill else out).round_().clamp_(0, 255)


def warp(images: Tensor, matrices: Tensor, mode: str, padding: str, fill: float) -> Tensor:
    """OpenCV's warpAffine of every face by its own 3x3 matrix (output pixel = input at the inverse map)."""
    inverse = torch.linalg.inv(matrices)
    xs, ys = pixel_grid(*images.shape[-2:], images.device)
    a = inverse[:, :2, :, None, None]  # (N, 2, 3, 1, 1)
    src_x = a[:, 0, 0] * xs + a[:, 0, 1] * ys + a[:, 0, 2]
    src_y = a[:, 1, 0] * xs + a[:, 1, 1] * ys + a[:, 1, 2]
    return sample(images, src_x, src_y, mode, padding, fill)


def affine_matrices(
    translate: tuple[Tensor, Tensor],
    shear: tuple[Tensor, Tensor],
    scale: tuple[Tensor, Tensor],
    rotate: Tensor,
    height: int,
    width: int,
) -> Tensor:
    """albumentations' create_affine_transformation_matrix, batched: centre, scale, rotate, shear, translate."""
    n, device = rotate.shape[0], rotate.device
    cx, cy = width / 2 - 0.5, height / 2 - 0.5
    radians = torch.deg2rad(rotate % 360)
    cos, sin = torch.cos(radians), torch.sin(radians)
    tan_x, tan_y = torch.tan(torch.deg2rad(shear[0])), torch.tan(torch.deg2rad(shear[1]))
    # shear @ rotate @ scale, then the centre shifts and the translation.
    r = torch.stack((torch.stack((cos, sin), -1), torch.stack((-sin, cos), -1)), -2)
    s = torch.stack((torch.stack((1 + 0 * tan_x, tan_x), -1), torch.stack((tan_y, 1 + 0 * tan_y), -1)), -2)
    linear = s @ r * torch.stack((scale[0], scale[1]), -1)[:, None, :]  # scale the columns: (S R) diag(sx, sy)
    centre = torch.tensor([cx, cy], device=device)
    offset = centre + torch.stack((translate[0], translate[1]), -1) - (linear @ centre)
    matrices = torch.zeros(n, 3, 3, device=device)
    matrices[:, :2, :2], matrices[:, :2, 2], matrices[:, 2, 2] = linear, offset, 1
    return matrices


def border(transform: A.BasicTransform) -> tuple[str, str, float]:
    """(sampling mode, padding, fill) of a geometric transform, or why it cannot run here."""
    if transform.interpolation not in SAMPLING:
        raise unsupported(transform, f"with interpolation={transform.interpolation}")
    if transform.border_mode not in BORDERS:
        raise unsupported(transform, f"with border_mode={transform.border_mode}")
    fill = transform.fill
    if not isinstance(fill, (int, float)):
        raise unsupported(transform, f"with fill={fill!r}")
    return SAMPLING[transform.interpolation], BORDERS[transform.border_mode], float(fill)


class BatchedStep:
    """One transform of the recipe on a batch: ``sample`` draws every face's parameters (with ``applied``, whether
    the face is changed at all, as albumentations' ``random() < p``), ``apply`` executes them."""

    def __init__(self, transform: A.BasicTransform) -> None:
        self.transform = transform

    def sample(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> Params:
        return {"applied": applied(self.transform.p, n, generator, device)}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        raise NotImplementedError

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        height, width = images.shape[-2:]
        return self.apply(images, self.sample(images.shape[0], height, width, generator, images.device))


def identity_unless_applied(matrix: Tensor, changed: Tensor) -> Params:
    matrix[~changed] = torch.eye(3, device=matrix.device)
    return {"matrix": matrix, "applied": changed}


class AffineStep(BatchedStep):
    """Affine: shift (a fraction of the side truncated to whole pixels, or pixels), shear, scale, rotation."""

    def __init__(self, transform: A.Affine) -> None:
        super().__init__(transform)
        if transform.fit_output or transform.balanced_scale:
            raise unsupported(transform, "with fit_output or balanced_scale")
        self.mode, self.padding, self.fill = border(transform)

    def sample(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> Params:
        t = self.transform

        def draw(limits: Sequence[float]) -> Tensor:
            return uniform(limits[0], limits[1], n, generator, device)

        if t.translate_px is not None:
            tx = integers(int(t.translate_px["x"][0]), int(t.translate_px["x"][1]), n, generator, device).float()
            ty = integers(int(t.translate_px["y"][0]), int(t.translate_px["y"][1]), n, generator, device).float()
        else:
            tx = torch.trunc(draw(t.translate_percent["x"]) * width)
            ty = torch.trunc(draw(t.translate_percent["y"]) * height)
        shear = (-draw(t.shear["x"]), -draw(t.shear["y"]))
        scale_x = draw(t.scale["x"])
        scale_y = scale_x if t.keep_ratio else draw(t.scale["y"])
        matrix = affine_matrices((tx, ty), shear, (scale_x, scale_y), draw(t.rotate), height, width)
        return identity_unless_applied(matrix, applied(t.p, n, generator, device))

    def apply(self, images: Tensor, params: Params) -> Tensor:
        return warp(images, params["matrix"], self.mode, self.padding, self.fill)


class RotateStep(AffineStep):
    def __init__(self, transform: A.Rotate) -> None:
        BatchedStep.__init__(self, transform)
        if transform.crop_border:
            raise unsupported(transform, "with crop_border=True")
        self.mode, self.padding, self.fill = border(transform)

    def sample(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> Params:
        angle = uniform(*self.transform.limit, n, generator, device)
        zero, one = torch.zeros(n, device=device), torch.ones(n, device=device)
        matrix = affine_matrices((zero, zero), (zero, zero), (one, one), angle, height, width)
        return identity_unless_applied(matrix, applied(self.transform.p, n, generator, device))


class HorizontalFlipStep(BatchedStep):
    def apply(self, images: Tensor, params: Params) -> Tensor:
        return torch.where(params["applied"][:, None, None, None], images.flip(-1), images)


class ResizedCropStep(BatchedStep):
    """Ten tries of an area and an aspect ratio, the first that fits cut at a random place, else the centre crop of
    the nearest allowed ratio; the crop resized to ``size`` (OpenCV's linear resize: half-pixel centres, the crop's
    edges repeated). ``box``: (N, 4) x_min, y_min, x_max, y_max."""

    def __init__(self, transform: A.RandomResizedCrop) -> None:
        super().__init__(transform)
        if transform.interpolation != cv2.INTER_LINEAR or transform.area_for_downscale is not None:
            raise unsupported(transform, "with other than linear interpolation")

    def sample(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> Params:
        t, area, tries = self.transform, height * width, 10
        target = uniform(t.scale[0] * area, t.scale[1] * area, n * tries, generator, device)
        ratio = torch.exp(uniform(math.log(t.ratio[0]), math.log(t.ratio[1]), n * tries, generator, device))
        w = torch.round(torch.sqrt(target * ratio)).view(n, tries)
        h = torch.round(torch.sqrt(target / ratio)).view(n, tries)
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = torch.argmax(fits.int(), dim=1, keepdim=True)  # the first try that fits
        found = fits.any(dim=1)
        if width / height < t.ratio[0]:
            fallback = (round(width / t.ratio[0]), width)
        elif width / height > t.ratio[1]:
            fallback = (height, round(height * t.ratio[1]))
        else:
            fallback = (height, width)
        crop_h = torch.where(found, h.gather(1, first)[:, 0], float(fallback[0]))
        crop_w = torch.where(found, w.gather(1, first)[:, 0], float(fallback[1]))
        start_y = torch.rand(n, generator=generator, device=device)
        start_x = torch.rand(n, generator=generator, device=device)
        y0 = torch.where(found, torch.floor((height - crop_h + 1) * start_y), torch.floor((height - crop_h) / 2))
        x0 = torch.where(found, torch.floor((width - crop_w + 1) * start_x), torch.floor((width - crop_w) / 2))
        changed = applied(t.p, n, generator, device)
        box = torch.stack((x0, y0, x0 + crop_w, y0 + crop_h), dim=1)
        box[~changed] = torch.tensor([0.0, 0.0, width, height], device=device)
        return {"box": box, "applied": changed}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        out_h, out_w = self.transform.size
        xs, ys = pixel_grid(out_h, out_w, images.device)
        x0, y0, x1, y1 = (v[:, None, None] for v in params["box"].unbind(1))
        src_x = torch.minimum((x0 + (xs + 0.5) * (x1 - x0) / out_w - 0.5).clamp(min=0), x1 - 1).maximum(x0)
        src_y = torch.minimum((y0 + (ys + 0.5) * (y1 - y0) / out_h - 0.5).clamp(min=0), y1 - 1).maximum(y0)
        return sample(images, src_x, src_y, "bilinear", "border")


class HolesStep(BatchedStep):
    """Boxes filled with a grey level: Erasing (one box of a random area and aspect ratio, solved as albumentations
    solves it) and CoarseDropout (a random number of boxes of random sides). ``holes``: (N, K, 4) boxes x_min, y_min,
    x_max, y_max; an empty one changes nothing."""

    def __init__(self, transform: A.Erasing | A.CoarseDropout) -> None:
        super().__init__(transform)
        if not isinstance(transform.fill, (int, float)):
            raise unsupported(transform, f"with fill={transform.fill!r}")
        self.fill = float(transform.fill)

    def sample(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> Params:
        draw = self.erasing if isinstance(self.transform, A.Erasing) else self.dropout
        top, left, h, w, valid = draw(n, height, width, generator, device)
        changed = applied(self.transform.p, n, generator, device)
        boxes = torch.stack((left, top, left + w, top + h), dim=-1).float()
        return {"holes": torch.where((valid & changed[:, None])[..., None], boxes, 0.0), "applied": changed}

    def erasing(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> tuple:
        r_min, r_max = self.transform.ratio
        low, high = height * width * self.transform.scale[0], height * width * self.transform.scale[1]
        most = min(high, r_min * height**2, r_max * height**2, width**2 / r_min, width**2 / r_max)
        if most < low:  # no box of these areas and ratios fits: nothing is erased
            zeros = torch.zeros(n, 1, device=device)
            return zeros, zeros, zeros, zeros, zeros.bool()
        area = uniform(low, most, n, generator, device)
        top_r = torch.clamp(width * width / area, max=r_max)
        bottom_r = torch.clamp(area / (height * height), min=r_min)
        ratio = bottom_r + (top_r - bottom_r) * torch.rand(n, generator=generator, device=device)
        h, w = torch.round(torch.sqrt(area / ratio)), torch.round(torch.sqrt(area * ratio))
        top, left = integers(0, height - h, n, generator, device), integers(0, width - w, n, generator, device)
        return top[:, None], left[:, None], h[:, None], w[:, None], (bottom_r <= top_r)[:, None]

    def dropout(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> tuple:
        few, many = self.transform.num_holes_range
        count = integers(few, many, n, generator, device)

        def sides(limits: Sequence[float], side: int) -> Tensor:
            if limits[1] >= 1:  # whole pixels
                return integers(int(limits[0]), int(min(limits[1], side)), n * many, generator, device)
            return torch.trunc(side * uniform(limits[0], limits[1], n * many, generator, device)).long()

        h, w = sides(self.transform.hole_height_range, height), sides(self.transform.hole_width_range, width)
        top = integers(0, height - h, n * many, generator, device)
        left = integers(0, width - w, n * many, generator, device)
        used = torch.arange(many, device=device) < count[:, None]
        return top.view(n, many), left.view(n, many), h.view(n, many), w.view(n, many), used

    def apply(self, images: Tensor, params: Params) -> Tensor:
        xs, ys = pixel_grid(*images.shape[-2:], images.device)
        x0, y0, x1, y1 = (v[:, :, None, None] for v in params["holes"].unbind(-1))
        inside = ((xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)).any(dim=1)
        return torch.where(inside[:, None], self.fill, images)


class CropStep(BatchedStep):
    """A window copied pixel for pixel: at a random place (RandomCrop) or the centre (CenterCrop)."""

    def __init__(self, transform: A.RandomCrop | A.CenterCrop) -> None:
        super().__init__(transform)
        if getattr(transform, "pad_if_needed", False):
            raise unsupported(transform, "with pad_if_needed=True")

    def sample(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> Params:
        crop_h, crop_w = self.transform.height, self.transform.width
        if crop_h > height or crop_w > width:
            raise ValueError(f"{type(self.transform).__name__}: a {crop_h}x{crop_w} crop of {height}x{width} faces")
        if isinstance(self.transform, A.CenterCrop):
            y0 = torch.full((n,), (height - crop_h) // 2, device=device)
            x0 = torch.full((n,), (width - crop_w) // 2, device=device)
        else:
            y0 = torch.floor((height - crop_h + 1) * torch.rand(n, generator=generator, device=device)).long()
            x0 = torch.floor((width - crop_w + 1) * torch.rand(n, generator=generator, device=device)).long()
        return {"box": torch.stack((x0, y0, x0 + crop_w, y0 + crop_h), dim=1).long()}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        n, crop_h, crop_w = images.shape[0], self.transform.height, self.transform.width
        x0, y0 = params["box"][:, 0].long(), params["box"][:, 1].long()
        rows = (y0[:, None] + torch.arange(crop_h, device=images.device))[:, :, None]
        cols = (x0[:, None] + torch.arange(crop_w, device=images.device))[:, None, :]
        return images[torch.arange(n, device=images.device)[:, None, None], 0, rows, cols][:, None]


class ResizeStep(BatchedStep):
    """OpenCV's linear resize (half-pixel centres, no antialiasing), then whole grey levels."""

    def __init__(self, transform: A.Resize) -> None:
        super().__init__(transform)
        if transform.interpolation != cv2.INTER_LINEAR or getattr(transform, "area_for_downscale", None):
            raise unsupported(transform, "with other than linear interpolation")

    def sample(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> Params:
        return {}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        size = (self.transform.height, self.transform.width)
        if tuple(images.shape[-2:]) == size:
            return images
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False).round_().clamp_(0, 255)


class NormalizeStep(BatchedStep):
    def __init__(self, transform: A.Normalize) -> None:
        super().__init__(transform)
        if transform.normalization != "standard":
            raise unsupported(transform, f"with normalization={transform.normalization!r}")
        mean, std = (
            float(torch.as_tensor(v, dtype=torch.float64).flatten()[0]) for v in (transform.mean, transform.std)
        )
        self.mean, self.std = mean * transform.max_pixel_value, std * transform.max_pixel_value

    def sample(self, n: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> Params:
        return {}

    def apply(self, images: Tensor, params: Params) -> Tensor:
        return (images - self.mean) / self.std


STEPS: dict[type, type[BatchedStep]] = {
    A.Affine: AffineStep,
    A.Rotate: RotateStep,
    A.HorizontalFlip: HorizontalFlipStep,
    A.RandomResizedCrop: ResizedCropStep,
    A.Erasing: HolesStep,
    A.CoarseDropout: HolesStep,
    A.RandomCrop: CropStep,
    A.CenterCrop: CropStep,
    A.Resize: ResizeStep,
    A.Normalize: NormalizeStep,
}


def batched_step(transform: A.BasicTransform) -> BatchedStep:
    """The batched version of one albumentations transform (its exact class: a subclass may draw otherwise)."""
    step = STEPS.get(type(transform))
    if step is None:
        raise unsupported(transform, "is a transform")
    return step(transform)


class BatchedPipeline:
    """An albumentations Compose run on (N, H, W) uint8 faces on their device. With ``ten_crop_size``, every face's
    ten crops of that side (corners and centre, and their mirrors) take the place of the pipeline's random crop."""

    def __init__(self, compose: A.Compose, ten_crop_size: int | None = None) -> None:
        self.ten_crop_size = ten_crop_size
        self.steps: list[Step] = []
        for transform in compose.transforms:
            if isinstance(transform, ToTensorV2):
                continue
            if ten_crop_size and isinstance(transform, A.RandomCrop):
                self.steps.append(self.ten_crops)
            else:
                self.steps.append(batched_step(transform))

    @property
    def views(self) -> int:
        """Images per face in the output: 10 with ten-crop training, else 1."""
        return 10 if self.ten_crop_size else 1

    def ten_crops(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """(N, 1, H, W) -> (N * 10, 1, s, s), each face's ten crops together."""
        side = self.ten_crop_size
        return torch.stack(ten_crop(images, [side, side]), dim=1).flatten(0, 1)

    def __call__(self, faces: Tensor, generator: torch.Generator) -> Tensor:
        images = faces[:, None].float()
        for step in self.steps:
            images = step(images, generator)
        return images
