"""Untrusted image bytes (uploads): check format and pixel count from the header, then decode.

OpenCV would happily allocate a 50,000 x 50,000 canvas for a 100 KB PNG (a decompression
bomb); Pillow reads only the header to report the size, so nothing large is allocated
before the pixel limit is checked.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image as PILImage

from surveil.domain import Image, InputError
from surveil.vision.crops import decode_image

#: Formats an operator's crop arrives in; anything else is refused before decoding.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP"})


def _has_known_magic(data: bytes) -> bool:
    """Leading bytes of the accepted formats: anything else is refused unparsed."""
    return (
        data.startswith(b"\xff\xd8\xff")
        or data.startswith(b"\x89PNG\r\n\x1a\n")
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or data.startswith(b"BM")
    )


class UnsupportedImageError(InputError):
    """The bytes are not an image in an accepted format."""


class ImageTooLargeError(InputError):
    """The image header declares more pixels than the configured limit."""


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What the header says, before any pixel is decoded."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def probe_image(data: bytes, *, what: str = "upload") -> ImageHeader:
    """Format and size from the header only; refuses anything but JPEG/PNG/WebP/BMP."""
    if not data:
        raise UnsupportedImageError(f"{what} is empty; send a JPEG, PNG, WebP or BMP crop")
    if not _has_known_magic(data):
        raise UnsupportedImageError(
            f"{what} is not a JPEG, PNG, WebP or BMP image (by its first bytes)"
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns (or raises) on huge declared sizes; we apply our own limit below.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as img:
                fmt, (width, height) = str(img.format), img.size
    except PILImage.DecompressionBombError:
        raise ImageTooLargeError(
            f"{what} declares more pixels than Pillow will open, above the limit of "
            "api.max_image_pixels; send a crop, not a frame"
        ) from None
    except Exception:
        # Broad on purpose: this parses hostile bytes, and Ultralytics patches Image.open
        # to fall back to HEIF, which raises ImportError where pi-heif is absent.
        raise UnsupportedImageError(
            f"{what} is not an image; send a JPEG, PNG, WebP or BMP crop"
        ) from None
    if fmt not in ACCEPTED_FORMATS:
        raise UnsupportedImageError(f"{what} is a {fmt} image; send a JPEG, PNG, WebP or BMP crop")
    if width <= 0 or height <= 0:
        raise UnsupportedImageError(f"{what} has no pixels")
    return ImageHeader(fmt, width, height)


def decode_untrusted(data: bytes, *, max_pixels: int, what: str = "upload") -> Image:
    """Decode an uploaded image after checking its header against `max_pixels`."""
    header = probe_image(data, what=what)
    if header.pixels > max_pixels:
        raise ImageTooLargeError(
            f"{what} is {header.width}x{header.height} = {header.pixels:,} pixels, above the "
            f"limit of {max_pixels:,} (setting api.max_image_pixels); send a crop, not a frame"
        )
    image = decode_image(data, what=what)
    if image.shape[0] != header.height or image.shape[1] != header.width:
        # The header lied about the size (a crafted file): refuse rather than trust either.
        raise UnsupportedImageError(f"{what} decodes to a size its header does not declare")
    return image
