"""Branding: the admin's logo and favicon, checked by content and stored atomically.

Rules: the file type is sniffed from the bytes (a filename or a declared type is never
trusted); only raster formats a browser shows as an image are kept (SVG can carry
scripts); a bad upload changes nothing. Without an upload the defaults shipped in
branding/static/ are used. Refusals are sentences in the language of the request
(hub_ext.i18n), naming what is wrong and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from hub_ext.i18n import N_, _
from hub_ext.i18n.format import size_text
from hub_ext.paths import REPO_ROOT

DEFAULTS_DIR = REPO_ROOT / "branding" / "static"
TEMPLATES_DIR = REPO_ROOT / "branding" / "templates"
KINDS = ("logo", "favicon")
MAX_BYTES = {"logo": 1024 * 1024, "favicon": 256 * 1024}
MAX_SIDE = 4096  # pixels, width and height
ALLOWED = {"logo": ("png", "jpg"), "favicon": ("ico", "png")}
MIME = {"png": "image/png", "jpg": "image/jpeg", "ico": "image/x-icon"}
NAMES = {"png": "PNG", "jpg": "JPEG", "ico": "ICO"}
KIND_NAMES = {"logo": N_("logo"), "favicon": N_("favicon")}
DEFAULTS = {"logo": ("logo.png", "image/png"), "favicon": ("favicon.ico", "image/x-icon")}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BrandingError(ValueError):
    """An upload that cannot be used; the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class Upload:
    mime: str
    ext: str


@dataclass(frozen=True)
class Current:
    path: Path
    mime: str
    sha256: str
    custom: bool  # False: the shipped default


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _allowed_text(kind: str) -> str:
    first, second = (NAMES[e] for e in ALLOWED[kind])
    return _("%(first)s or %(second)s (at most %(size)s)", first=first, second=second,
             size=size_text(MAX_BYTES[kind]))


def _unknown_kind(kind: str) -> BrandingError:
    return BrandingError(_("Unknown branding item %(kind)s; choose one of: %(kinds)s.",
                           kind=repr(kind), kinds=", ".join(KINDS)))


def _check_side(image_format: str, width: int, height: int) -> None:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise BrandingError(_("The %(format)s image is %(width)dx%(height)d pixels; width and height must be "
                              "1 to %(max)d.", format=image_format, width=width, height=height, max=MAX_SIDE))


def _check_png(data: bytes) -> None:
    """Signature, IHDR first with a sane size, every chunk complete with a good CRC, IEND last."""
    pos, first = len(PNG_SIGNATURE), True
    while True:
        if pos + 8 > len(data):
            raise BrandingError(_("This PNG file is truncated (it ends before its IEND chunk); upload the whole file."))
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 8 + length + 4
        if end > len(data):
            raise BrandingError(_("This PNG file is truncated or damaged (a chunk runs past the end of the file)."))
        body = data[pos + 8:pos + 8 + length]
        if zlib.crc32(ctype + body) != struct.unpack(">I", data[end - 4:end])[0]:
            raise BrandingError(_("This PNG file is damaged (a chunk checksum does not match)."))
        if first:
            if ctype != b"IHDR" or length != 13:
                raise BrandingError(_("This PNG file is damaged (it does not start with an IHDR header)."))
            _check_side("PNG", *struct.unpack(">II", body[:8]))
            first = False
        if ctype == b"IEND":
            if end != len(data):
                raise BrandingError(_("This PNG file has %(extra)d bytes of other data after its end (IEND); "
                                      "upload a plain PNG (save it again with an image editor).", extra=len(data) - end))
            return
        pos = end


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _check_jpeg(data: bytes) -> None:
    """SOI, then marker segments up to a start-of-frame with a sane size, and an EOI after it."""
    pos = 2
    while True:
        while pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise BrandingError(_("This JPEG file is truncated or damaged (no image frame header found)."))
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise BrandingError(_("This JPEG file is truncated or damaged (a segment runs past the end of the file)."))
        if marker in _SOF:
            if length < 8:
                raise BrandingError(_("This JPEG file is damaged (its frame header is too short)."))
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            _check_side("JPEG", width, height)
            # After the frame header 0xFF 0xD9 can only be the end-of-image marker (scan data
            # stuffs every 0xFF), so the first one found must be the file's last two bytes.
            eoi = data.find(b"\xff\xd9", pos + 2 + length)
            if eoi < 0:
                raise BrandingError(
                    _("This JPEG file is truncated (it has no end-of-image marker); upload the whole file."))
            if eoi + 2 != len(data):
                raise BrandingError(_("This JPEG file has %(extra)d bytes of other data after its end (end-of-image "
                                      "marker); upload a plain JPEG (save it again with an image editor).",
                                      extra=len(data) - eoi - 2))
            return
        if marker == 0xDA:  # scan data before any frame header
            raise BrandingError(_("This JPEG file is damaged (image data comes before its frame header)."))
        pos += 2 + length


def _check_ico(data: bytes) -> None:
    """ICONDIR with 1..64 entries, each pointing at a complete PNG or BMP image inside the file."""
    if len(data) < 6:
        raise BrandingError(_("This ICO file is truncated; upload the whole file."))
    count = struct.unpack("<HHH", data[:6])[2]
    if not 1 <= count <= 64:
        raise BrandingError(_("This ICO file says it holds %(count)d images; an icon must hold 1 to 64.", count=count))
    table_end = 6 + 16 * count
    if table_end > len(data):
        raise BrandingError(_("This ICO file is truncated (its image table is incomplete)."))
    for i in range(count):
        _w, _h, _c, _r, _p, _b, size, offset = struct.unpack("<BBBBHHII", data[6 + 16 * i:22 + 16 * i])
        if size == 0 or offset < table_end or offset + size > len(data):
            raise BrandingError(_("This ICO file is truncated or damaged (image %(number)d lies outside the file).",
                                  number=i + 1))
        image = data[offset:offset + size]
        if image.startswith(PNG_SIGNATURE):
            _check_png(image)
        elif len(image) < 40 or struct.unpack("<I", image[:4])[0] not in (40, 108, 124):
            raise BrandingError(_("This ICO file is damaged (image %(number)d is neither PNG nor bitmap).",
                                  number=i + 1))
        else:
            _check_ico_bitmap(image, i + 1)


ICO_MAX_SIDE = 256  # pixels: the largest icon an ICO directory can describe


def _check_ico_bitmap(image: bytes, number: int) -> None:
    """A bitmap inside an ICO: its header's size (the height counts the colour and the mask
    rows) within an icon's limits, and its pixel rows present in the file, so no reader is
    asked to allocate an image the file does not hold."""
    header, width, height, _planes, bits, compression = struct.unpack("<IiiHHI", image[:20])
    rows = abs(height) // 2
    if not (0 < width <= ICO_MAX_SIDE and 0 < rows <= ICO_MAX_SIDE):
        raise BrandingError(_("Image %(number)d of this ICO file is a bitmap of %(width)dx%(height)d pixels; icon "
                              "bitmaps must be 1 to %(max)d pixels wide and high.",
                              number=number, width=width, height=rows, max=ICO_MAX_SIDE))
    if bits not in (1, 4, 8, 16, 24, 32) or compression not in (0, 3):
        raise BrandingError(_("Image %(number)d of this ICO file is a bitmap with %(bits)d bits per pixel and "
                              "compression %(compression)d; allowed: uncompressed 1, 4, 8, 16, 24 or 32 bits per "
                              "pixel.", number=number, bits=bits, compression=compression))
    needed = header + ((width * bits + 31) // 32) * 4 * rows
    if len(image) < needed:
        raise BrandingError(_("This ICO file is truncated or damaged (image %(number)d declares %(width)dx%(height)d "
                              "pixels but holds less data than that).", number=number, width=width, height=rows))


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and b"<svg" in head


def sniff(data: bytes) -> str | None:
    """The file type by its magic bytes: 'png', 'jpg', 'ico', 'svg' or None."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x00\x00\x01\x00"):
        return "ico"
    if _looks_like_svg(data):
        return "svg"
    return None


def validate_upload(kind: str, data: bytes, filename: str | None = None,
                    declared_type: str | None = None) -> Upload:
    """Check an uploaded logo or favicon by its content. filename and declared_type are
    accepted for the caller's convenience and deliberately ignored: clients lie."""
    if kind not in KINDS:
        raise _unknown_kind(kind)
    allowed, what = _allowed_text(kind), _(KIND_NAMES[kind])
    if not data:
        raise BrandingError(_("The %(kind)s file is empty. Upload a %(allowed)s image.", kind=what, allowed=allowed))
    if len(data) > MAX_BYTES[kind]:
        raise BrandingError(_("The %(kind)s file is %(size)s, larger than the limit. Upload a %(allowed)s image.",
                              kind=what, size=size_text(len(data)), allowed=allowed))
    ext = sniff(data)
    if ext == "svg":
        raise BrandingError(_("SVG images are not accepted for the %(kind)s: an SVG file can carry scripts "
                              "that would run on the hub's pages. Upload a %(allowed)s image instead.",
                              kind=what, allowed=allowed))
    if ext not in ALLOWED[kind]:
        if ext:
            found = (_("an %(format)s image", format=NAMES[ext]) if ext == "ico"
                     else _("a %(format)s image", format=NAMES[ext]))
        else:
            found = _("not an image in a format we accept")
        raise BrandingError(_("The %(kind)s file is %(found)s (judged by its content, not its name). "
                              "Upload a %(allowed)s image.", kind=what, found=found, allowed=allowed))
    {"png": _check_png, "jpg": _check_jpeg, "ico": _check_ico}[ext](data)
    return Upload(mime=MIME[ext], ext=ext)


# --- storage -----------------------------------------------------------------------

def branding_dir(state_dir: Path | str) -> Path:
    return Path(state_dir) / "branding"


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # state files are private; the hub serves them, the spawner copies them in
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_branding(state_dir: Path | str, kind: str, data: bytes) -> Upload:
    """Validate, then make `data` the current logo or favicon. Raises BrandingError and
    changes nothing when the upload is not acceptable."""
    upload = validate_upload(kind, data)
    folder = branding_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f"{kind}.{upload.ext}"
    meta = {"file": image.name, "mime": upload.mime, "ext": upload.ext, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "updated": utcnow().isoformat()}
    _write_atomic(image, data)
    _write_atomic(folder / f"{kind}.json", json.dumps(meta, indent=1).encode())
    for old in folder.glob(f"{kind}.*"):  # exactly one current file per kind
        if old.name not in (image.name, f"{kind}.json") and not old.name.startswith("."):
            old.unlink(missing_ok=True)
    return upload


def _default_sha(kind: str) -> str:
    return hashlib.sha256((DEFAULTS_DIR / DEFAULTS[kind][0]).read_bytes()).hexdigest()


def describe(state_dir: Path | str, kind: str) -> Current:
    """The logo or favicon in use now: the stored upload, else the shipped default."""
    if kind not in KINDS:
        raise _unknown_kind(kind)
    folder = branding_dir(state_dir)
    try:
        meta = json.loads((folder / f"{kind}.json").read_text())
        path = folder / meta["file"]
        if path.parent == folder and path.is_file():
            return Current(path, meta["mime"], meta["sha256"], True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    name, mime = DEFAULTS[kind]
    return Current(DEFAULTS_DIR / name, mime, _default_sha(kind), False)


def current_branding(state_dir: Path | str, kind: str) -> tuple[Path, str]:
    current = describe(state_dir, kind)
    return current.path, current.mime


def reset_branding(state_dir: Path | str, kind: str) -> None:
    """Back to the shipped default: the pointer goes first, then the stored file."""
    if kind not in KINDS:
        raise _unknown_kind(kind)
    folder = branding_dir(state_dir)
    (folder / f"{kind}.json").unlink(missing_ok=True)
    for old in folder.glob(f"{kind}.*"):
        old.unlink(missing_ok=True)
