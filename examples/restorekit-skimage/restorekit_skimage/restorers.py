"""The restorers: one scikit-image (or bm3d) call each, wrapped for restorekit's tensors.

restorekit hands a restorer a batch of ``N, C, H, W`` float tensors in
[0, 1] (C = 1 or 3) and the :class:`~restorekit.degrade.Degradation` that
damaged it. :class:`SkimageRestorer` converts each image to the
channel-last float64 array scikit-image expects (``H, W`` for gray,
``H, W, 3`` with ``channel_axis=-1`` for colour), calls
:meth:`~SkimageRestorer.restore_one`, clips the result to [0, 1] and stacks
the batch back on the input's device and dtype. A new method needs only
``restore_one``.

Deblurring methods take the kernel from the degradation. The scikit-image
functions assume a circular (FFT) or zero-padded (spatial) boundary, so the
image is extended first the way it was blurred: by wrapping for a circular
blur (the synthetic benchmark model), by mirroring for ``boundary="reflect"``
(a real photo), and cropped back after.

The inpainting method (``biharmonic``) takes the missing pixels from the
degradation's mask (0 = missing) and refuses a degradation without one, or a
mask that hides every pixel of an image (there is nothing to fill from).

Images too small for a method are refused with an :class:`InputError` before
the library is called: ``unsupervised-wiener`` needs at least 3x3 pixels and
no fewer than the kernel (its Laplacian prior and the FFT of the kernel),
``bm3d`` at least :data:`BM3D_MIN_SIDE` pixels a side (below that the bm3d
package raises, returns garbage or, at 8x8, crashes the interpreter; measured
with each profile in a subprocess).
"""

from __future__ import annotations

import abc

import numpy as np
import torch

from restorekit.errors import InputError
from restorekit.restorer import Restorer

from . import RESTORERS

#: The smallest image side bm3d 4.0.3 restores with each profile; found by running every profile on
#: n x n, n x 40 and 40 x n images (gray and colour) in a subprocess, since 8x8 segfaults.
BM3D_MIN_SIDE = {"np": 9, "vn": 12, "vn_old": 13, "high": 9, "deb": 9}


def _configure(cls):
    """Fill a restorer class's name, tasks, params and summary from :data:`RESTORERS`."""
    tasks, params, _, summary = RESTORERS[cls.name]
    cls.tasks = frozenset(tasks)
    cls.params = params
    cls.summary = summary
    return cls


def noise_sigma(array: np.ndarray, degradation, given) -> float:
    """The noise level to use: ``given`` if a number, else the degradation's, else estimated."""
    if given != "auto":
        return float(given)
    sigma = float(getattr(degradation, "sigma", 0.0) or 0.0)
    if sigma > 0:
        return sigma
    if min(array.shape[:2]) >= 21:  # restorekit.estimate_noise (PCA of patches): texture does not read as noise
        import restorekit

        return float(restorekit.estimate_noise(array.transpose(2, 0, 1) if array.ndim == 3 else array).sigma)
    from skimage.restoration import estimate_sigma  # too small for 7x7 patches

    return float(estimate_sigma(array, average_sigmas=True, channel_axis=-1 if array.ndim == 3 else None))


def blur_kernel(degradation, who: str) -> tuple[np.ndarray, str]:
    """The degradation's kernel as float64 numpy and its boundary, or a clear :class:`InputError`."""
    blur = getattr(degradation, "blur", None)
    if blur is None:
        raise InputError(
            f"{who!r} needs the blur kernel; pass a degradation with a Blur, e.g. "
            "Compose(Blur(load_kernel('course')), Noise(0.01)), or --kernel SPEC on the command line"
        )
    return blur.kernel.detach().cpu().double().numpy(), blur.boundary


def require_size(who: str, array: np.ndarray, min_h: int, min_w: int, why: str) -> None:
    """Raise :class:`InputError` unless the ``(H, W[, 3])`` ``array`` is at least ``min_h x min_w``."""
    h, w = array.shape[:2]
    if h < min_h or w < min_w:
        raise InputError(f"{who!r} needs an image of at least {min_h}x{min_w} pixels ({why}), got {h}x{w}; "
                         "use a larger image or another restorer")


def extend(channel: np.ndarray, width: int, boundary: str) -> np.ndarray:
    """Pad a 2-D array by ``width`` the way it was blurred: wrap (circular) or mirror (reflect)."""
    return np.pad(channel, width, mode="wrap" if boundary == "circular" else "reflect")


class SkimageRestorer(Restorer):
    """Base class: batch of tensors in, one numpy image at a time through :meth:`restore_one`."""

    @abc.abstractmethod
    def restore_one(self, array: np.ndarray, degradation) -> np.ndarray:
        """Restore one image: float64 ``(H, W)`` or ``(H, W, 3)``; return the same shape."""

    def restore(self, image: torch.Tensor, degradation=None) -> torch.Tensor:
        n, c, h, w = image.shape
        if c not in (1, 3):
            raise InputError(
                f"{self.name!r} restores gray (1-channel) or RGB (3-channel) images, got {c} channels; "
                "drop the alpha channel with image[:, :3]"
            )
        outputs = []
        for item in image.detach().cpu().double().numpy():
            array = item[0] if c == 1 else np.moveaxis(item, 0, -1)
            out = np.asarray(self.restore_one(array, degradation), dtype=np.float64)
            out = out[None] if c == 1 else np.moveaxis(out, -1, 0)
            outputs.append(np.clip(out, 0.0, 1.0))
        return torch.from_numpy(np.stack(outputs)).to(device=image.device, dtype=image.dtype)


def _channel_axis(array: np.ndarray):
    return -1 if array.ndim == 3 else None


@_configure
class TV(SkimageRestorer):
    """Total-variation denoising, Chambolle's algorithm; weight 0.8 x sigma unless given."""

    name = "tv"
    uses_noise_level = True  # sigma="auto" reads the degradation's sigma (so pnp can steer it)

    def restore_one(self, array, degradation):
        from skimage.restoration import denoise_tv_chambolle

        weight = self.config["weight"]
        if weight == "auto":
            weight = 0.8 * noise_sigma(array, degradation, self.config["sigma"])
        return denoise_tv_chambolle(array, weight=weight, max_num_iter=self.config["max_num_iter"],
                                    channel_axis=_channel_axis(array))


@_configure
class Wavelet(SkimageRestorer):
    """Wavelet shrinkage (BayesShrink by default); colour is denoised in YCbCr."""

    name = "wavelet"
    uses_noise_level = True  # sigma="auto" reads the degradation's sigma (so pnp can steer it)

    def restore_one(self, array, degradation):
        from skimage.restoration import denoise_wavelet

        return denoise_wavelet(
            array, sigma=noise_sigma(array, degradation, self.config["sigma"]), wavelet=self.config["wavelet"],
            mode=self.config["mode"], method=self.config["method"], convert2ycbcr=array.ndim == 3,
            rescale_sigma=True, channel_axis=_channel_axis(array),
        )


@_configure
class NLMeans(SkimageRestorer):
    """Non-local means (fast mode) with the true or estimated sigma; h = h_factor x sigma."""

    name = "nlmeans"
    uses_noise_level = True  # sigma="auto" reads the degradation's sigma (so pnp can steer it)

    def restore_one(self, array, degradation):
        from skimage.restoration import denoise_nl_means

        sigma = noise_sigma(array, degradation, self.config["sigma"])
        return denoise_nl_means(
            array, h=self.config["h_factor"] * sigma, sigma=sigma, fast_mode=True,
            patch_size=self.config["patch_size"], patch_distance=self.config["patch_distance"],
            channel_axis=_channel_axis(array),
        )


@_configure
class UnsupervisedWiener(SkimageRestorer):
    """Wiener-Hunt deconvolution whose noise and prior levels are sampled, not given."""

    name = "unsupervised-wiener"
    needs_degradation = True  # it deconvolves the degradation's blur kernel

    def restore_one(self, array, degradation):
        from skimage.restoration import unsupervised_wiener

        kernel, boundary = blur_kernel(degradation, self.name)
        require_size(self.name, array, max(3, kernel.shape[0]), max(3, kernel.shape[1]),
                     f"its 3x3 Laplacian prior and the {kernel.shape[0]}x{kernel.shape[1]} kernel")
        channels = array[..., None] if array.ndim == 2 else array
        out = []
        for i in range(channels.shape[-1]):
            ch = channels[..., i]
            h, w = ch.shape
            if boundary != "circular":  # mirrored to a periodic image of twice the size
                ch = np.pad(ch, ((0, h - 2), (0, w - 2)), mode="reflect")
            rng = np.random.default_rng(self.config["seed"] + i)
            restored, _ = unsupervised_wiener(ch, kernel, clip=False, rng=rng)
            out.append(restored[:h, :w])
        out = np.stack(out, axis=-1)
        return out[..., 0] if array.ndim == 2 else out


@_configure
class RichardsonLucy(SkimageRestorer):
    """Richardson-Lucy deconvolution of the (clipped, non-negative) observation."""

    name = "richardson-lucy"
    needs_degradation = True  # it deconvolves the degradation's blur kernel

    def restore_one(self, array, degradation):
        from skimage.restoration import richardson_lucy

        kernel, boundary = blur_kernel(degradation, self.name)
        # Each iteration spreads the padded edge's errors inward; a margin of four kernels keeps them out.
        width = 4 * max(kernel.shape)
        channels = array[..., None] if array.ndim == 2 else array
        out = []
        for i in range(channels.shape[-1]):
            ch = extend(np.clip(channels[..., i], 0.0, 1.0), width, boundary)
            restored = richardson_lucy(ch, kernel, num_iter=self.config["num_iter"], clip=False)
            out.append(restored[width:-width, width:-width])
        out = np.stack(out, axis=-1)
        return out[..., 0] if array.ndim == 2 else out


@_configure
class Biharmonic(SkimageRestorer):
    """Fill the pixels the degradation's mask marks missing (0) by solving the biharmonic equation."""

    name = "biharmonic"
    needs_degradation = True  # it fills the pixels the degradation's mask marks missing

    def restore(self, image: torch.Tensor, degradation=None) -> torch.Tensor:
        mask = getattr(degradation, "mask", None) if degradation is not None else None
        if mask is None:
            raise InputError(
                f"{self.name!r} fills the pixels a mask marks missing, but the degradation has no mask; pass "
                "Mask(...) (1 = observed, 0 = missing), e.g. Mask.lower_half(h, w), or --mask FILE"
            )
        n, c, h, w = image.shape
        mask = torch.as_tensor(mask).detach().cpu()
        mask = mask.reshape(1, 1, *mask.shape[-2:]) if mask.ndim == 2 else mask
        if tuple(mask.shape[-2:]) != (h, w):
            raise InputError(f"the mask is {tuple(mask.shape[-2:])} but the image is {(h, w)}; "
                             "give a mask of the image's height and width")
        # restore_one sees one image at a time, in batch order: it takes that image's mask from here.
        self._missing, self._item = (mask.expand(n, c, h, w) == 0).numpy(), 0
        try:
            return super().restore(image, degradation)
        finally:
            del self._missing, self._item

    def restore_one(self, array, degradation):
        from skimage.restoration import inpaint_biharmonic

        missing = self._missing[self._item]  # (C, H, W) for this image
        self._item += 1
        if not missing.any():
            return array
        hidden = [i for i in range(missing.shape[0]) if missing[i].all()]
        if hidden:
            where = "every pixel" + ("" if array.ndim == 2 else f" of channel {hidden[0]}")
            raise InputError(f"the mask hides {where} of image {self._item - 1}, so {self.name!r} has nothing "
                             "to fill from; keep some pixels observed (mask 1) in each image and channel")
        if array.ndim == 2:
            return inpaint_biharmonic(array, missing[0])
        if (missing == missing[:1]).all():  # one mask for all channels: one call
            return inpaint_biharmonic(array, missing[0], channel_axis=-1)
        return np.stack([inpaint_biharmonic(array[..., i], missing[i]) if missing[i].any() else array[..., i]
                         for i in range(array.shape[-1])], axis=-1)


@_configure
class BM3D(SkimageRestorer):
    """BM3D (gray) or CBM3D (colour, opponent colour space) with the true or estimated sigma."""

    name = "bm3d"
    uses_noise_level = True  # sigma="auto" reads the degradation's sigma (so pnp can steer it)

    def restore_one(self, array, degradation):
        profile = self.config["profile"]
        side = BM3D_MIN_SIDE[profile]
        require_size(self.name, array, side, side, f"bm3d's blocks with profile {profile!r}")
        import bm3d

        sigma = noise_sigma(array, degradation, self.config["sigma"])
        if array.ndim == 3:
            return bm3d.bm3d_rgb(array, sigma_psd=sigma, profile=self.config["profile"])
        return bm3d.bm3d(array, sigma_psd=sigma, profile=self.config["profile"])
