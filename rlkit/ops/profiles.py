"""Lightroom / Camera Raw profiles ("Look"): their stored tables decoded, encoded and applied in torch.

A creative profile lives in an XMP sidecar or preset as ``crs:Look`` (name, amount, parameters); its
``Parameters`` name up to two tables by fingerprint (``crs:RGBTable``, ``crs:LookTable``) whose data is stored in
the same file as ``crs:Table_<fingerprint>``. The table text format (Adobe DNG SDK, ``dng_big_table``):

- text -> bytes: a Z85-like base-85 code with Adobe's own alphabet (:data:`_ALPHABET`); every 5 characters
  are one little-endian 32-bit word, least significant digit first; a final group of k < 5 characters gives
  k - 1 bytes; characters outside the alphabet (white space) are skipped;
- bytes -> stream: a 4-byte little-endian uncompressed size, then a zlib stream;
- the stream, little endian: ``uint32 type`` (0 look table, 1 RGB table) and ``uint32 version``, then
  - RGB table (version 1): ``uint32 dimensions`` (1 or 3), ``uint32 divisions`` n, then n (1-D) or n^3
    (3-D, red outermost, blue innermost) entries of three ``uint16`` stored as differences (mod 2^16) from
    the identity ramp ``nop[i] = (i * 65535 + n // 2) // (n - 1)``; then ``uint32 primaries`` (sRGB, Adobe
    RGB, ProPhoto, Display P3, Rec.2020), ``uint32 gamma`` (linear, sRGB, 1.8, 2.2, Rec.2020), ``uint32
    gamut`` (clip, extend), ``float64`` minimum and maximum amount, optionally ``uint32`` flags;
  - look table (versions 1, 2; a DNG hue/saturation/value map): ``uint32`` hue, saturation and value
    divisions, then hue x sat x val entries (value outermost, saturation innermost) of three ``float32``:
    hue shift (degrees), saturation scale, value scale; ``uint32 encoding`` (0 linear, 1 sRGB); version 2
    adds ``float64`` minimum and maximum amount; optionally ``uint32`` flags;
- the fingerprint is the MD5 of the uncompressed stream, 32 upper-case hex digits.

How rlkit applies them (our own reading of the DNG specification's hue/saturation maps and of Camera Raw's
RGB tables, in linear light after exposure / white balance and before tone, as a profile does):

- RGB table: the image goes to the table's primaries (3x3 matrices from the standard chromaticities,
  Bradford adaptation to D50 for ProPhoto) and gamma (1.8 and 2.2 as pure powers), is clipped to [0, 1]
  (``gamut`` "extend" adds the table's change to the unclipped values instead), looked up by trilinear
  interpolation (1-D tables per channel), mixed with its input by the amount, and converted back;
- look table: linear ProPhoto RGB (sRGB-encoded first when the table's encoding says so) to HSV; the
  entry is interpolated trilinearly in (value, hue, saturation) with hue wrapping round, then hue += shift,
  saturation *= scale (at most 1), value *= scale, back to RGB. The amount a scales the effect: shift x a,
  scales 1 + a (scale - 1);
- amount = the Look's ``Amount`` (x ``RGBTableAmount`` for the RGB table), held within the table's own
  [minimum, maximum] amount.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .color import linear_to_srgb, srgb_to_linear
from .errors import ProgramError

__all__ = ["RGBTable", "LookTable", "Profile", "decode_table", "encode_table", "apply_profile", "PRIMARIES",
           "GAMMAS"]

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?`'|()[]{}@%$#"
_DIGIT = {c: i for i, c in enumerate(_ALPHABET)}
PRIMARIES = ("srgb", "adobe", "prophoto", "p3", "rec2020")
GAMMAS = ("linear", "srgb", "1.8", "2.2", "rec2020")
_GAMUTS = ("clip", "extend")
_TYPE_LOOK, _TYPE_RGB = 0, 1
_MAX_TABLE_TEXT = 16 << 20  # characters; real tables are a few hundred kB


# ------------------------------------------------------------------------------------------- text <-> bytes
def _b85decode(text: str) -> bytes:
    digits = [_DIGIT[c] for c in text if c in _DIGIT]
    out = bytearray()
    for i in range(0, len(digits), 5):
        group = digits[i:i + 5]
        value = sum(d * 85 ** k for k, d in enumerate(group))
        out += (value & 0xFFFFFFFF).to_bytes(4, "little")[:4 if len(group) == 5 else len(group) - 1]
    return bytes(out)


def _b85encode(data: bytes) -> str:
    out = []
    for i in range(0, len(data), 4):
        chunk = data[i:i + 4]
        value = int.from_bytes(chunk.ljust(4, b"\0"), "little")
        digits = []
        for _ in range(5):
            value, d = divmod(value, 85)
            digits.append(_ALPHABET[d])
        out.append("".join(digits[:5 if len(chunk) == 4 else len(chunk) + 1]))
    return "".join(out)


# ------------------------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class RGBTable:
    """An RGB lookup table (1-D per channel, or 3-D) in a stated colour space; samples in [0, 1]."""

    samples: np.ndarray = field(compare=False)  # (n, 3) or (n, n, n, 3), float64 in [0, 1]; [r][g][b] order
    primaries: str = "srgb"
    gamma: str = "srgb"
    gamut: str = "clip"
    min_amount: float = 0.0
    max_amount: float = 2.0
    _key: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        s = np.asarray(self.samples, dtype=np.float64)
        n = s.shape[0] if s.ndim else 0
        if not (s.ndim == 2 and s.shape == (n, 3) and 2 <= n <= 4096) and \
                not (s.ndim == 4 and s.shape == (n, n, n, 3) and 2 <= n <= 64):
            raise ProgramError(f"RGB table: samples must be (n, 3) with 2 <= n <= 4096 or (n, n, n, 3) with "
                               f"2 <= n <= 64, got shape {s.shape}")
        if not np.isfinite(s).all():
            raise ProgramError("RGB table: samples must be finite")
        for name, value, allowed in (("primaries", self.primaries, PRIMARIES), ("gamma", self.gamma, GAMMAS),
                                     ("gamut", self.gamut, _GAMUTS)):
            if value not in allowed:
                raise ProgramError(f"RGB table: {name} must be one of {list(allowed)}, got {value!r}")
        if not 0.0 <= self.min_amount <= 1.0 <= self.max_amount:
            raise ProgramError(f"RGB table: amounts must satisfy 0 <= min <= 1 <= max, got "
                               f"{self.min_amount}, {self.max_amount}")
        s = np.rint(np.clip(s, 0.0, 1.0) * 65535.0) / 65535.0  # the format's precision: 16 bits
        s.flags.writeable = False
        object.__setattr__(self, "samples", s)
        object.__setattr__(self, "_key", _stream(self))

    @property
    def dimensions(self) -> int:
        """1 (a curve per channel) or 3 (a cube)."""
        return 1 if self.samples.ndim == 2 else 3

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RGBTable) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)


@dataclass(frozen=True)
class LookTable:
    """A hue / saturation / value map (DNG ``ProfileLookTable`` form): per (value, hue, saturation) node a hue
    shift in degrees, a saturation scale and a value scale."""

    deltas: np.ndarray = field(compare=False)  # (val, hue, sat, 3) float64
    srgb_encoded: bool = False
    min_amount: float = 1.0
    max_amount: float = 1.0
    _key: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        d = np.asarray(self.deltas, dtype=np.float64)
        if d.ndim != 4 or d.shape[-1] != 3 or not (1 <= d.shape[0] <= 256 and 1 <= d.shape[1] <= 360
                                                   and 1 <= d.shape[2] <= 256):
            raise ProgramError(f"look table: deltas must be (val 1-256, hue 1-360, sat 1-256, 3), got {d.shape}")
        if d.shape[2] < 2:
            raise ProgramError("look table: needs at least 2 saturation divisions")
        if not np.isfinite(d).all():
            raise ProgramError("look table: deltas must be finite")
        if not 0.0 <= self.min_amount <= 1.0 <= self.max_amount:
            raise ProgramError(f"look table: amounts must satisfy 0 <= min <= 1 <= max, got "
                               f"{self.min_amount}, {self.max_amount}")
        d = d.astype(np.float32).astype(np.float64)  # the format's precision: float32
        d.flags.writeable = False
        object.__setattr__(self, "deltas", d)
        object.__setattr__(self, "_key", _stream(self))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LookTable) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)


def _nop(n: int) -> np.ndarray:
    i = np.arange(n, dtype=np.int64)
    return (i * 0xFFFF + (n >> 1)) // (n - 1)


def _stream(table: RGBTable | LookTable) -> bytes:
    """The uncompressed table stream (what the fingerprint is the MD5 of)."""
    if isinstance(table, RGBTable):
        s = table.samples
        n = s.shape[0]
        q = np.rint(s * 65535.0).astype(np.int64)
        nop = _nop(n)
        if s.ndim == 2:
            q = q - nop[:, None]
        else:
            q = q - np.stack(np.meshgrid(nop, nop, nop, indexing="ij"), axis=-1)
        body = (q % 65536).astype("<u2").tobytes()
        return (struct.pack("<4I", _TYPE_RGB, 1, table.dimensions, n) + body
                + struct.pack("<3I2d", PRIMARIES.index(table.primaries), GAMMAS.index(table.gamma),
                              _GAMUTS.index(table.gamut), table.min_amount, table.max_amount))
    d = table.deltas
    version = 1 if table.min_amount == 1.0 == table.max_amount else 2
    out = struct.pack("<5I", _TYPE_LOOK, version, d.shape[1], d.shape[2], d.shape[0])
    out += d.astype("<f4").tobytes() + struct.pack("<I", int(table.srgb_encoded))
    if version == 2:
        out += struct.pack("<2d", table.min_amount, table.max_amount)
    return out


def encode_table(table: RGBTable | LookTable) -> tuple[str, str]:
    """(fingerprint, text): what an XMP stores as ``crs:RGBTable`` / ``crs:LookTable`` and ``crs:Table_<fp>``."""
    raw = table._key
    return hashlib.md5(raw).hexdigest().upper(), _b85encode(struct.pack("<I", len(raw)) + zlib.compress(raw))


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.pos, self.where = data, 0, where

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ProgramError(f"{self.where}: table data ends early (truncated or not a Camera Raw table)")
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out

    def array(self, dtype: str, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.pos + size > len(self.data):
            raise ProgramError(f"{self.where}: table data ends early (truncated or not a Camera Raw table)")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out


def decode_table(text: str, where: str = "profile table") -> RGBTable | LookTable:
    """Decode a ``crs:Table_<fingerprint>`` value; a malformed one raises :class:`ProgramError` naming the fault."""
    if not isinstance(text, str) or not text.strip():
        raise ProgramError(f"{where}: expected the table text, got {type(text).__name__}")
    if len(text) > _MAX_TABLE_TEXT:
        raise ProgramError(f"{where}: table text of {len(text)} characters is too large")
    packed = _b85decode(text)
    if len(packed) < 5:
        raise ProgramError(f"{where}: table text too short")
    size = int.from_bytes(packed[:4], "little")
    if size > 64 << 20:
        raise ProgramError(f"{where}: table claims {size} bytes uncompressed; not a Camera Raw table")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed[4:], size + 1)
    except zlib.error as e:
        raise ProgramError(f"{where}: table data is not zlib-compressed ({e})") from None
    if len(raw) != size:
        raise ProgramError(f"{where}: table data is {len(raw)} bytes, its header says {size}")
    r = _Reader(raw, where)
    kind, version = r.take("<2I")
    if kind == _TYPE_RGB:
        if version != 1:
            raise ProgramError(f"{where}: unknown RGB table version {version}")
        dims, n = r.take("<2I")
        if dims not in (1, 3) or not (2 <= n <= (4096 if dims == 1 else 64)):
            raise ProgramError(f"{where}: RGB table with {dims} dimensions and {n} divisions is not supported")
        count = n if dims == 1 else n ** 3
        q = r.array("<u2", 3 * count).astype(np.int64).reshape(*([n] * dims), 3)
        nop = _nop(n)
        q = q + (nop[:, None] if dims == 1 else np.stack(np.meshgrid(nop, nop, nop, indexing="ij"), axis=-1))
        samples = (q % 65536) / 65535.0
        prim, gamma, gamut = r.take("<3I")
        lo, hi = r.take("<2d")
        if prim >= len(PRIMARIES) or gamma >= len(GAMMAS) or gamut >= len(_GAMUTS):
            raise ProgramError(f"{where}: RGB table colour space codes ({prim}, {gamma}, {gamut}) are unknown")
        return RGBTable(samples, PRIMARIES[prim], GAMMAS[gamma], _GAMUTS[gamut], lo, hi)
    if kind == _TYPE_LOOK:
        if version not in (1, 2):
            raise ProgramError(f"{where}: unknown look table version {version}")
        hue, sat, val = r.take("<3I")
        if not (1 <= hue <= 360 and 2 <= sat <= 256 and 1 <= val <= 256) or hue * sat * val > 36 * 32 * 16:
            raise ProgramError(f"{where}: look table with {hue} x {sat} x {val} divisions is not supported")
        deltas = r.array("<f4", hue * sat * val * 3).astype(np.float64).reshape(val, hue, sat, 3)
        (encoding,) = r.take("<I")
        if encoding not in (0, 1):
            raise ProgramError(f"{where}: unknown look table encoding {encoding}")
        lo, hi = r.take("<2d") if version == 2 else (1.0, 1.0)
        return LookTable(deltas, bool(encoding), lo, hi)
    raise ProgramError(f"{where}: table type {kind} is not a look table (0) or an RGB table (1)")


@dataclass(frozen=True)
class Profile:
    """A Lightroom profile that rlkit can render: its look table and / or RGB table, and its amount (0..2)."""

    name: str
    amount: float = 1.0
    look_table: LookTable | None = None
    rgb_table: RGBTable | None = None
    rgb_table_amount: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ProgramError(f"profile: 'name' must be a string, got {self.name!r}")
        for k in ("amount", "rgb_table_amount"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= float(v) <= 2.0):
                raise ProgramError(f"profile: '{k}' must be a number in [0, 2], got {v!r}")
            object.__setattr__(self, k, float(v))
        if self.look_table is None and self.rgb_table is None:
            raise ProgramError(f"profile {self.name!r}: has neither a look table nor an RGB table to apply")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; tables as Camera Raw's table text."""
        d: dict[str, Any] = {"name": self.name, "amount": self.amount}
        if self.look_table is not None:
            d["look_table"] = encode_table(self.look_table)[1]
        if self.rgb_table is not None:
            d["rgb_table"] = encode_table(self.rgb_table)[1]
            d["rgb_table_amount"] = self.rgb_table_amount
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | Profile, where: str = "profile") -> Profile:
        """Build from :meth:`to_dict`'s form (tables as text)."""
        if isinstance(d, Profile):
            return d
        if not isinstance(d, Mapping):
            raise ProgramError(f"{where}: expected an object with 'name' and tables, got {type(d).__name__}")
        unknown = sorted(set(d) - {"name", "amount", "look_table", "rgb_table", "rgb_table_amount"})
        if unknown:
            raise ProgramError(f"{where}: unknown field(s) {unknown}")
        look = d.get("look_table")
        rgb = d.get("rgb_table")
        look_t = decode_table(look, f"{where}.look_table") if isinstance(look, str) else look
        rgb_t = decode_table(rgb, f"{where}.rgb_table") if isinstance(rgb, str) else rgb
        if look_t is not None and not isinstance(look_t, LookTable):
            raise ProgramError(f"{where}: 'look_table' does not hold a look table")
        if rgb_t is not None and not isinstance(rgb_t, RGBTable):
            raise ProgramError(f"{where}: 'rgb_table' does not hold an RGB table")
        return cls(d.get("name", ""), d.get("amount", 1.0), look_t, rgb_t, d.get("rgb_table_amount", 1.0))


# ------------------------------------------------------------------------------------------- colour spaces
_WHITE = {"D65": (0.3127, 0.3290), "D50": (0.3457, 0.3585)}
#: (red, green, blue chromaticities, white point) of each primaries code
_SPACES = {
    "srgb": (((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), "D65"),
    "adobe": (((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), "D65"),
    "prophoto": (((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), "D50"),
    "p3": (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), "D65"),
    "rec2020": (((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)), "D65"),
}
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def _xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def rgb_to_xyz(primaries: str) -> np.ndarray:
    """3x3 matrix from linear RGB in ``primaries`` to XYZ of its own white (columns scaled so white -> Y = 1)."""
    prims, white = _SPACES[primaries]
    m = np.stack([_xyz(p) for p in prims], axis=1)
    return m * np.linalg.solve(m, _xyz(_WHITE[white]))


def _adapt(src: str, dst: str) -> np.ndarray:
    """Bradford chromatic adaptation matrix from white ``src`` to ``dst``."""
    if src == dst:
        return np.eye(3)
    s, d = _BRADFORD @ _xyz(_WHITE[src]), _BRADFORD @ _xyz(_WHITE[dst])
    return np.linalg.solve(_BRADFORD, np.diag(d / s) @ _BRADFORD)


@functools.cache
def srgb_to_space(primaries: str) -> np.ndarray:
    """3x3 matrix from linear sRGB (Rec.709, D65) to linear RGB in ``primaries`` (adapted to its white)."""
    white = _SPACES[primaries][1]
    return np.linalg.solve(rgb_to_xyz(primaries), _adapt("D65", white) @ rgb_to_xyz("srgb"))


def _matmul(m: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", torch.as_tensor(m, dtype=x.dtype, device=x.device), x)


def _encode(x: torch.Tensor, gamma: str) -> torch.Tensor:
    x = x.clamp_min(0.0)
    if gamma == "linear":
        return x
    if gamma == "srgb":
        return linear_to_srgb(x)
    if gamma == "rec2020":
        return torch.where(x < 0.018053968510807, 4.5 * x, 1.09929682680944 * x.pow(0.45) - 0.09929682680944)
    return x.pow(1.0 / float(gamma))


def _decode(x: torch.Tensor, gamma: str) -> torch.Tensor:
    if gamma == "linear":
        return x
    if gamma == "srgb":
        return srgb_to_linear(x)
    if gamma == "rec2020":
        return torch.where(x < 0.081242858298635, x / 4.5,
                           ((x.clamp_min(0.0) + 0.09929682680944) / 1.09929682680944).pow(1.0 / 0.45))
    return x.clamp_min(0.0).pow(float(gamma))


# ------------------------------------------------------------------------------------------- application
def _rgb_lookup(x: torch.Tensor, t: RGBTable) -> torch.Tensor:
    """Table values at x (N,3,H,W) in [0, 1] of the table's space: linear interpolation per channel (1-D) or
    trilinear in the cube (3-D, exact for any table that is affine in each cell)."""
    s = torch.tensor(t.samples, dtype=x.dtype, device=x.device)
    n, _, h, w = x.shape
    if t.dimensions == 1:
        k = s.shape[0]
        pos = x * (k - 1)
        i0 = pos.floor().clamp(0, k - 2)
        frac = pos - i0
        i0 = i0.long()
        out = []
        for c in range(3):
            a, b = s[:, c][i0[:, c]], s[:, c][i0[:, c] + 1]
            out.append(a + (b - a) * frac[:, c])
        return torch.stack(out, 1)
    cube = s.permute(3, 0, 1, 2).unsqueeze(0).expand(n, -1, -1, -1, -1)  # (n,3,R,G,B): depth=R, height=G, width=B
    grid = (x * 2.0 - 1.0).permute(0, 2, 3, 1).flip(-1).unsqueeze(1)  # (n,1,H,W,3) as (x=B, y=G, z=R)
    return F.grid_sample(cube, grid, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]


def _amount(a: float, table: RGBTable | LookTable) -> float:
    return min(max(a, table.min_amount), table.max_amount)


def _apply_rgb(lin: torch.Tensor, t: RGBTable, amount: float) -> torch.Tensor:
    m = srgb_to_space(t.primaries)
    v = _encode(_matmul(m, lin), t.gamma)
    vc = v.clamp(0.0, 1.0)
    looked = _rgb_lookup(vc, t)
    out = v + amount * (looked - vc) if t.gamut == "extend" else vc + amount * (looked - vc)
    return _matmul(np.linalg.inv(m), _decode(out, t.gamma))


def _rgb_to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hue in [0, 6), saturation, value (max) of non-negative RGB (N,3,H,W); each (N,H,W)."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    v = torch.maximum(torch.maximum(r, g), b)
    d = v - torch.minimum(torch.minimum(r, g), b)
    s = torch.where(v > 0, d / v.clamp_min(1e-12), torch.zeros_like(v))
    dd = d.clamp_min(1e-12)
    h = torch.where(v == r, (g - b) / dd, torch.where(v == g, 2.0 + (b - r) / dd, 4.0 + (r - g) / dd))
    h = torch.where(d > 0, torch.remainder(h, 6.0), torch.zeros_like(h))
    return h, s, v


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    h = torch.remainder(h, 6.0)
    out = []
    for k in (5.0, 3.0, 1.0):  # standard closed form: c(n) = v - v s max(0, min(k, 4 - k, 1)), k = (n + h) mod 6
        kk = torch.remainder(k + h, 6.0)
        out.append(v - v * s * torch.minimum(torch.minimum(kk, 4.0 - kk), torch.ones_like(kk)).clamp_min(0.0))
    return torch.stack(out, 1)


def _apply_look(lin: torch.Tensor, t: LookTable, amount: float) -> torch.Tensor:
    m = srgb_to_space("prophoto")
    x = _matmul(m, lin).clamp_min(0.0)
    if t.srgb_encoded:
        x = linear_to_srgb(x)
    h, s, v = _rgb_to_hsv(x)
    d = torch.tensor(t.deltas, dtype=lin.dtype, device=lin.device)  # (V, H, S, 3)
    nv, nh, ns = d.shape[:3]
    d = torch.cat([d, d[:, :1]], dim=1)  # hue wraps round: node nh is node 0 again
    if nv == 1:
        d = torch.cat([d, d], dim=0)
    vol = d.permute(3, 0, 1, 2).unsqueeze(0).expand(lin.shape[0], -1, -1, -1, -1)  # (n,3,V,H+1,S)
    gx = s.clamp(0.0, 1.0) * 2.0 - 1.0  # saturation: width
    gy = h / 3.0 - 1.0 if nh > 1 else torch.full_like(h, -1.0)  # hue: height (node nh is hue 6 = 0)
    gz = v.clamp(0.0, 1.0) * 2.0 - 1.0 if nv > 1 else torch.full_like(v, -1.0)  # value: depth
    grid = torch.stack([gx, gy, gz], dim=-1).unsqueeze(1)
    e = F.grid_sample(vol, grid, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]
    hue_shift, sat_scale, val_scale = e[:, 0], e[:, 1], e[:, 2]
    h = h + amount * hue_shift * (6.0 / 360.0)
    s = (s * (1.0 + amount * (sat_scale - 1.0)).clamp_min(0.0)).clamp(max=1.0)
    v = v * (1.0 + amount * (val_scale - 1.0)).clamp_min(0.0)
    out = _hsv_to_rgb(h, s, v)
    if t.srgb_encoded:
        out = srgb_to_linear(out)
    return _matmul(np.linalg.inv(m), out)


def apply_profile(lin: torch.Tensor, profile: Profile) -> torch.Tensor:
    """Apply ``profile`` to linear-light sRGB images (N,3,H,W): its look table, then its RGB table."""
    out = lin.clamp_min(0.0)
    if profile.look_table is not None:
        out = _apply_look(out, profile.look_table, _amount(profile.amount, profile.look_table))
    if profile.rgb_table is not None:
        a = _amount(profile.amount * profile.rgb_table_amount, profile.rgb_table)
        out = _apply_rgb(out, profile.rgb_table, a)
    return out.clamp_min(0.0)
