"""A synthetic SPIDER-like phantom: sagittal lumbar spine MRI volumes with SPIDER labels.

A fresh machine has no SPIDER download; this phantom is the package's embedded default
dataset. Each case is made from a seed (``numpy.random.default_rng``), so the same seed gives
bit-identical volumes, and is written in SPIDER's archive layout
(``images/<patient>_<seq>.mha`` + ``masks/<patient>_<seq>.mha``) so that it goes through the
same reader as the real data.

Anatomy (in the sagittal y-z plane, extruded over the central left-right slices, shrinking and
vanishing laterally): 5-9 vertebral bodies (rounded, slightly wedged rectangles with concave
endplates and a cortical rim) along a lordotic curve that turns kyphotic in the thoracic part,
intervertebral discs (annulus and nucleus, degenerated at random: lower, darker on T2, bulging),
the sacrum (unlabelled, as in SPIDER), the spinal canal (CSF, conus and cauda equina), posterior
elements (lamina and spinous process in the midline, pedicles and articular pillars laterally,
labelled as their vertebra), epidural fat, paraspinal muscle, subcutaneous fat, the abdomen
(bowel texture, psoas, aorta) and the anterior abdominal wall.

Labels follow SPIDER: 0 background, 100 canal, 1-25 vertebrae, 201-225 discs (disc 200+k lies
directly below vertebra k), 101-125 vertebrae cut by the field of view. ``numbering`` chooses
SPIDER's two directions: ``"bottom_up"`` (1 = the lowest lumbar vertebra, 201 the disc below it)
or ``"top_down"`` (24 = the lowest, 224 the disc below it, counting down upward).

Geometry follows SimpleITK/LPS conventions: identity direction with index x toward the patient's
left (the thick sagittal slices), y toward posterior, z toward superior; ``permuted=True`` stores
the same physical volume with the T2-SPACE-like direction ``[[0,0,-1],[1,0,0],[0,-1,0]]``, so a
reader must find the sagittal axis from the direction matrix.

Volumes are small: (nx, ny, nz) about (9-15, 160-256, 160-320) voxels of (3.3-4.8, 0.9-1.9,
0.9-1.9) mm, T2-SPACE (21-29, ...) with 1.6-2.4 mm sagittal slices; slice counts are odd so that
the central slice is the same whichever way the left-right axis runs. Making one takes about half
a second on one CPU core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import cKDTree

from spine.data.io import write_volume
from spine.errors import ConfigError

SEQUENCES = ("t1", "t2", "t2_SPACE")
NUMBERINGS = ("bottom_up", "top_down")
# Row-major direction of SPIDER's T2-SPACE series: index axis 0 -> posterior, 1 -> inferior,
# 2 -> right (the sagittal axis is the third index axis).
PERMUTED_DIRECTION = (0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
CANAL_LABEL = 100
PARTIAL_OFFSET = 100
DISC_OFFSET = 200
# A vertebral body with less of its area inside the field of view is "partly visible" (100 + k).
FULLY_VISIBLE = 0.95

_STREAM_ANATOMY, _STREAM_TEXTURE = 0, 1
_STREAM_SEQUENCE = {"t1": 11, "t2": 12, "t2_SPACE": 13}

# Relative tissue intensities (fat on T1 = 1). Each case jitters them by up to +-12 %.
_TISSUES = {
    "t1": dict(fat=1.0, muscle=0.33, marrow=0.64, cortex=0.07, annulus=0.27, nucleus=0.34,
               csf=0.09, cord=0.36, nerve=0.30, ligament=0.08, bowel=0.40, gas=0.03,
               fluid=0.16, vessel=0.10, skin=0.50),
    "t2": dict(fat=0.74, muscle=0.20, marrow=0.38, cortex=0.05, annulus=0.20, nucleus=0.98,
               csf=1.00, cord=0.36, nerve=0.44, ligament=0.05, bowel=0.42, gas=0.03,
               fluid=0.85, vessel=0.08, skin=0.42),
    "t2_SPACE": dict(fat=0.52, muscle=0.22, marrow=0.32, cortex=0.06, annulus=0.20, nucleus=0.92,
                     csf=1.00, cord=0.40, nerve=0.50, ligament=0.06, bowel=0.40, gas=0.03,
                     fluid=0.80, vessel=0.10, skin=0.35),
}

# Per-level base sizes in mm, index 0 = the lowest lumbar vertebra (L5), upward to the thorax.
_BODY_HEIGHT = (26.0, 27.5, 28.0, 27.5, 26.5, 24.5, 23.0, 22.0, 21.0, 20.5, 20.0, 19.5, 19.0, 18.5)
_BODY_DEPTH = (34.0, 35.0, 34.5, 33.5, 32.0, 30.0, 28.5, 27.5, 27.0, 26.5, 26.0, 25.5, 25.0, 24.5)
_DISC_HEIGHT = (11.0, 11.5, 11.0, 10.0, 9.0, 7.5, 6.5, 6.0, 5.5, 5.5, 5.0, 5.0, 5.0, 5.0)  # below each


# --- anatomy ------------------------------------------------------------------------------------

def _frame(phi: float) -> tuple[np.ndarray, np.ndarray]:
    """Tangent (toward superior) and normal (toward posterior) of a segment tilted by ``phi``.

    Vectors are (y, z) in mm; ``phi > 0`` tilts the superior end posteriorly.
    """
    return np.array([math.sin(phi), math.cos(phi)]), np.array([math.cos(phi), -math.sin(phi)])


@dataclass
class _Vertebra:
    k: int  # anatomical index from the bottom, 1 = lowest lumbar
    centre: np.ndarray  # (y, z) mm
    phi: float
    height: float
    depth: float
    half_width: float  # left-right
    wedge: float  # half-height change from the anterior to the posterior wall, mm
    radius: float  # corner rounding
    concavity: float  # endplate concavity depth
    marrow: float  # marrow intensity factor
    spinous_length: float
    spinous_drop: float
    spinous_tip: float  # height of the spinous tip as a fraction of the body height
    x_mid: float = 0.0  # left-right position of its midline (world x)
    lesion: tuple | None = None  # (a, b, radius) in body coordinates
    s: float = 0.0  # arc position of its posterior wall along the canal curve

    @property
    def frame(self):
        return _frame(self.phi)

    def profile(self, u: float):
        """Anterior and posterior wall positions (body coordinate ``a``) at lateral offset ``u``."""
        q = abs(u) / self.half_width
        if q >= 1.0:
            return None
        a_post = self.depth / 2 - 0.25 * self.depth * q ** 4
        a_ant = -self.depth / 2 + 0.75 * self.depth * (1.0 - math.sqrt(1.0 - q * q))
        return (a_ant, a_post) if a_post - a_ant > 2.0 else None

    def half_height(self, a):
        return self.height / 2 + self.wedge * (a / (self.depth / 2))

    def corners(self, u: float):
        """{(superior|inferior, anterior|posterior): (y, z)} at lateral offset ``u``, or None."""
        walls = self.profile(u)
        if walls is None:
            return None
        t, n = self.frame
        out = {}
        for side, a in zip(("ant", "post"), walls):
            h = self.half_height(a)
            out[("sup", side)] = self.centre + a * n + h * t
            out[("inf", side)] = self.centre + a * n - h * t
        return out


@dataclass
class _Disc:
    k: int  # lies directly below vertebra k
    degeneration: float
    bulge_post: float
    bulge_ant: float
    cleft: bool
    nucleus_centre: float


@dataclass
class _Anatomy:
    vertebrae: list
    discs: dict  # k -> _Disc
    sacrum_centre: np.ndarray  # S1 endplate centre
    sacrum_phi: float
    sacrum_depth: float
    sacrum_half_width: float
    sacrum_line: np.ndarray  # (m, 2) centreline points going down from the S1 endplate
    sacrum_radius: np.ndarray  # (m,) half thickness
    wall: np.ndarray = field(default=None)  # posterior-wall curve (m, 2), bottom -> top, 0.5 mm steps
    wall_normal: np.ndarray = field(default=None)
    wall_s: np.ndarray = field(default=None)
    s_sacrum_tip: float = 0.0
    s_s1: float = 0.0
    s_conus: float = 0.0
    canal_gap: float = 1.5
    canal_depth: float = 14.0
    canal_half_width: float = 11.0
    canal_wave: tuple = (0.0, 100.0, 0.0)
    skin_depth: float = 90.0
    skin_wave: tuple = (0.0, 100.0, 0.0)
    fat_thickness: float = 20.0
    lamina_thickness: float = 6.0
    spinous_reach: float = 30.0
    spinous_half_width: float = 3.5
    nerve_roots: list = field(default_factory=list)  # (depth fraction, thickness, s_end)
    abdomen: tuple = (0.0, 0.0, 0.0)  # anterior skin y = c0 + c1 (z - zc) + c2 (z - zc)^2, with zc
    abdominal_fat: float = 15.0
    aorta: tuple = (10.0, 10.0, 0.0)  # (lateral offset, radius, s of the bifurcation)
    x_centre: float = 0.0


def _build_anatomy(rng: np.random.Generator, n_vertebrae: int) -> _Anatomy:
    """A column of ``n_vertebrae`` vertebrae above the sacrum, S1 endplate centre at (0, 0)."""
    scale = rng.uniform(0.88, 1.12)
    deg = np.deg2rad
    lordosis = deg(rng.uniform(25.0, 55.0))  # L5 -> L1 change of tilt
    kyphosis = deg(rng.uniform(0.08, 0.22))  # per mm, thoracic
    phi_mid = deg(rng.uniform(-6.0, 6.0))  # tilt at L3
    phi = phi_mid - lordosis / 2
    heights = [_BODY_HEIGHT[min(i, 13)] * scale * rng.uniform(0.93, 1.07) for i in range(n_vertebrae)]
    depths = [_BODY_DEPTH[min(i, 13)] * scale * rng.uniform(0.93, 1.07) for i in range(n_vertebrae)]
    discs = {}
    disc_heights = []
    for i in range(n_vertebrae):
        k = i + 1
        degeneration = float(np.clip(rng.normal(0.35 if k <= 2 else 0.15, 0.25), 0.0, 0.95))
        discs[k] = _Disc(k=k, degeneration=degeneration,
                         bulge_post=rng.uniform(0.3, 1.2) + 3.5 * degeneration * rng.uniform(0.3, 1.0),
                         bulge_ant=rng.uniform(0.2, 1.2), cleft=bool(rng.random() < 0.5),
                         nucleus_centre=rng.uniform(0.48, 0.6))
        disc_heights.append(_DISC_HEIGHT[min(i, 13)] * scale * rng.uniform(0.85, 1.15)
                            * (1.0 - 0.4 * degeneration))
    # Sacrum: S1 endplate tilted further anteriorly than L5 (the lumbosacral angle).
    phi_s = phi - deg(rng.uniform(10.0, 25.0))
    sacrum_depth = depths[0] * rng.uniform(1.0, 1.1)
    sacrum_centre = np.zeros(2)
    vertebrae = []
    point = sacrum_centre.copy()  # centre of the endplate below the next disc
    below_phi = phi_s
    for i in range(n_vertebrae):
        k = i + 1
        h, height, depth = disc_heights[i], heights[i], depths[i]
        if i > 0:
            step = heights[i - 1] / 2 + h + height / 2
            rate = lordosis / 4 / 38.0 if k <= 5 else (0.0 if k == 6 else -kyphosis)
            phi = phi + rate * step + deg(rng.normal(0.0, 1.5))
        # Keep both disc edges open: the tilt change across a disc is limited by its height.
        limit = (h - 2.0) / (depth / 2)
        phi = below_phi + float(np.clip(phi - below_phi, -limit, limit))
        t_disc, _ = _frame((phi + below_phi) / 2)
        point = point + t_disc * h
        t, _ = _frame(phi)
        centre = point + t * height / 2
        point = centre + t * height / 2
        below_phi = phi
        thoracic = k >= 6
        lesion = None
        if rng.random() < 0.12:  # a haemangioma: a round spot, bright on T1 and T2
            lesion = (rng.uniform(-0.3, 0.3) * depth, rng.uniform(-0.3, 0.3) * height, rng.uniform(2.5, 6.0))
        vertebrae.append(_Vertebra(
            k=k, centre=centre, phi=phi, height=height, depth=depth,
            half_width=depth * rng.uniform(0.68, 0.8), wedge=rng.uniform(-1.2, 0.6) if not thoracic
            else rng.uniform(0.2, 1.2), radius=rng.uniform(2.0, 5.0), concavity=rng.uniform(0.4, 1.6),
            marrow=rng.uniform(0.92, 1.08),
            spinous_length=scale * (rng.uniform(24, 34) if not thoracic else rng.uniform(28, 38)),
            spinous_drop=(rng.uniform(1, 6) if not thoracic else rng.uniform(8, 16)),
            spinous_tip=rng.uniform(0.55, 0.75) if not thoracic else rng.uniform(0.3, 0.45), lesion=lesion))
    # Sacrum centreline: down and posteriorly from S1, curving anteriorly toward the tip.
    length = rng.uniform(90.0, 115.0) * scale
    steps = np.arange(0.0, length, 1.0)
    psi = -phi_s + deg(rng.uniform(0.0, 10.0)) - deg(rng.uniform(30.0, 60.0)) * (steps / length) ** 2
    down = np.stack([np.sin(psi), -np.cos(psi)], axis=1)
    line = sacrum_centre + np.concatenate([[[0.0, 0.0]], np.cumsum(down[:-1], axis=0)])
    tip = rng.uniform(4.0, 7.0)
    radius = tip + (sacrum_depth / 2 - tip) * (1.0 - steps / length) ** 1.4
    anatomy = _Anatomy(vertebrae=vertebrae, discs=discs, sacrum_centre=sacrum_centre, sacrum_phi=phi_s,
                       sacrum_depth=sacrum_depth, sacrum_half_width=depths[0] * 1.4,
                       sacrum_line=line, sacrum_radius=radius)
    _build_wall(anatomy)
    anatomy.canal_gap = rng.uniform(1.0, 2.5)
    anatomy.canal_depth = rng.uniform(11.0, 17.0) * scale
    anatomy.canal_half_width = rng.uniform(9.0, 12.5) * scale
    anatomy.canal_wave = (rng.uniform(0.0, 0.12), rng.uniform(60.0, 160.0), rng.uniform(0, 2 * np.pi))
    anatomy.fat_thickness = rng.uniform(8.0, 40.0)
    mean_spinous = float(np.mean([v.spinous_length for v in vertebrae]))
    anatomy.spinous_reach = mean_spinous + 2.0
    anatomy.skin_depth = (anatomy.canal_gap + anatomy.canal_depth + mean_spinous
                          + rng.uniform(4.0, 12.0) + anatomy.fat_thickness)
    anatomy.skin_wave = (rng.uniform(0.0, 8.0), rng.uniform(120.0, 300.0), rng.uniform(0, 2 * np.pi))
    anatomy.lamina_thickness = rng.uniform(4.5, 7.5)
    anatomy.spinous_half_width = rng.uniform(2.8, 4.5)
    for v in vertebrae:
        v.s = _wall_position(anatomy, v.centre + v.frame[1] * v.depth / 2)
    anatomy.s_s1 = _wall_position(anatomy, sacrum_centre + _frame(phi_s)[1] * sacrum_depth / 2)
    anatomy.s_sacrum_tip = _wall_position(anatomy, line[-1])
    # Conus medullaris: around L1-L2 (anatomical k = 4.5 .. 6).
    level = rng.uniform(4.5, 6.0)
    low = vertebrae[min(int(level), n_vertebrae) - 1]
    anatomy.s_conus = low.s + (level - int(level) - 0.5) * low.height
    anatomy.nerve_roots = [(rng.uniform(0.35, 0.95), rng.uniform(0.7, 1.3),
                            anatomy.s_s1 + rng.uniform(-30.0, 80.0)) for _ in range(rng.integers(4, 8))]
    l3 = vertebrae[min(2, n_vertebrae - 1)]
    abdomen_depth = rng.uniform(70.0, 220.0)
    anatomy.abdomen = (l3.centre[0] - l3.depth / 2 - abdomen_depth, rng.uniform(-0.15, 0.15),
                       rng.uniform(0.0, 0.0012), l3.centre[1])
    anatomy.abdominal_fat = rng.uniform(6.0, 30.0)
    anatomy.aorta = (rng.uniform(4.0, 14.0), rng.uniform(8.0, 12.0) * scale,
                     vertebrae[min(1, n_vertebrae - 1)].s + rng.uniform(0.0, 20.0))
    amp, wavelength, phase = rng.uniform(0.0, 3.0), rng.uniform(150.0, 400.0), rng.uniform(0, 2 * np.pi)
    for v in vertebrae:  # a slight scoliosis: the midline wanders left-right
        v.x_mid = anatomy.x_centre + amp * math.sin(2 * math.pi * v.centre[1] / wavelength + phase)
    return anatomy


def _build_wall(anatomy: _Anatomy) -> None:
    """The posterior wall of the column (sacrum, bodies), smoothed, extended at both ends."""
    line, radius = anatomy.sacrum_line, anatomy.sacrum_radius
    tangent = np.gradient(line, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    posterior = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)  # tangent points down
    sacral = (line + posterior * radius[:, None])[::-1]  # bottom -> top
    points = [sacral[0] - 80.0 * (sacral[1] - sacral[0]) / np.linalg.norm(sacral[1] - sacral[0])]
    points.extend(sacral)
    for v in anatomy.vertebrae:
        c = v.corners(0.0)
        points.extend([c[("inf", "post")], c[("sup", "post")]])
    top = anatomy.vertebrae[-1]
    points.append(points[-1] + top.frame[0] * 150.0)
    points = np.asarray(points)
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.arange(0.0, arc[-1], 0.5)
    curve = np.stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])], axis=1)
    curve = ndimage.uniform_filter1d(curve, size=13, axis=0, mode="nearest")
    tangent = np.gradient(curve, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    anatomy.wall = curve
    anatomy.wall_normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)  # toward posterior
    anatomy.wall_s = s


def _canal_depth(anatomy: _Anatomy, s: np.ndarray) -> np.ndarray:
    """Antero-posterior depth of the canal at arc positions ``s`` (narrowing along the sacrum)."""
    amp, wavelength, phase = anatomy.canal_wave
    depth = anatomy.canal_depth * (1.0 + amp * np.sin(2 * np.pi * s / wavelength + phase))
    sacral = np.clip((anatomy.s_s1 - s) / max(anatomy.s_s1 - anatomy.s_sacrum_tip, 1.0), 0.0, 1.0)
    return depth * (1.0 - 0.5 * sacral)


def _wall_position(anatomy: _Anatomy, point) -> float:
    index = int(np.argmin(np.sum((anatomy.wall - np.asarray(point)) ** 2, axis=1)))
    return float(anatomy.wall_s[index])


# --- field of view ------------------------------------------------------------------------------

@dataclass
class _Grid:
    size: tuple  # (nx, ny, nz)
    spacing: tuple  # (dx, dy, dz)
    start: tuple  # anatomy coordinates of voxel (0, 0, 0): (x, y, z)
    world_shift: tuple  # added to anatomy coordinates to give LPS world coordinates

    def axis(self, i: int) -> np.ndarray:
        return self.start[i] + self.spacing[i] * np.arange(self.size[i])


def _body_extent(v: _Vertebra) -> tuple[float, float]:
    z = [p[1] for p in v.corners(0.0).values()]
    return min(z), max(z)


def _choose_grid(rng: np.random.Generator, anatomy: _Anatomy, bottom_cut: bool, top_partial: bool,
                 n_full: int, sequence: str) -> _Grid:
    vs = anatomy.vertebrae
    first = 1 + int(bottom_cut)  # lowest fully visible vertebra (anatomical index)
    last = first + n_full - 1
    if bottom_cut:
        lo, hi = _body_extent(vs[0])
        z_bottom = min(lo + rng.uniform(0.3, 0.65) * (hi - lo), _body_extent(vs[first - 1])[0] - 1.0)
    else:
        low_disc = [c[1] for c in vs[0].corners(0.0).values()]
        _, n_s = _frame(anatomy.sacrum_phi)
        s1_ant = anatomy.sacrum_centre - n_s * anatomy.sacrum_depth / 2
        z_bottom = min(min(low_disc), s1_ant[1]) - rng.uniform(5.0, 70.0)
    if top_partial:
        lo, hi = _body_extent(vs[last])
        z_top = max(lo + rng.uniform(0.3, 0.7) * (hi - lo), _body_extent(vs[last - 1])[1] + 1.0)
    else:
        z_top = _body_extent(vs[last - 1])[1] + rng.uniform(0.5, 4.0)
    fov_z = z_top - z_bottom
    # Posterior edge behind the skin (or just inside the subcutaneous fat), anterior edge anywhere
    # in the abdomen, at least 20 mm in front of the bodies.
    inside = (anatomy.wall[:, 1] > z_bottom) & (anatomy.wall[:, 1] < z_top)
    wall, normal = anatomy.wall[inside], anatomy.wall_normal[inside]
    skin_y = np.max(wall[:, 0] + normal[:, 0] * anatomy.skin_depth)
    spinous_y = np.max(wall[:, 0] + normal[:, 0] * (anatomy.skin_depth - anatomy.fat_thickness + 3.0))
    y_post = max(skin_y + rng.uniform(-12.0, 35.0), spinous_y)
    body_front = min(v.centre[0] - v.depth for v in vs if z_bottom - 40 < v.centre[1] < z_top + 40)
    fov_y = max(rng.uniform(220.0, 300.0), y_post - body_front + 20.0)
    ny = int(rng.integers(160, 257))
    dy = fov_y / ny
    if rng.random() < 0.5:  # square in-plane pixels
        nz = int(np.clip(round(fov_z / dy), 160, 320))
    else:
        nz = int(np.clip(round(fov_z / rng.uniform(0.9, 1.6)), 160, 320))
    dz = fov_z / (nz - 1)
    if sequence == "t2_SPACE":
        nx = int(rng.choice([21, 23, 25, 27, 29]))
        dx = rng.uniform(1.6, 2.4)
    else:
        nx = int(rng.choice([9, 11, 13, 15]))
        dx = rng.uniform(3.3, 4.8)
    centre = nx // 2
    x_start = anatomy.x_centre + rng.uniform(-0.35, 0.35) * dx - centre * dx
    grid = _Grid(size=(nx, ny, nz), spacing=(dx, dy, dz), start=(x_start, y_post - (ny - 1) * dy, z_bottom),
                 world_shift=(rng.uniform(-20.0, 20.0), rng.uniform(-60.0, 60.0), rng.uniform(-250.0, 80.0)))
    return grid


def _visible_fraction(v: _Vertebra, grid: _Grid) -> float:
    """Share of the body's midline profile inside the field of view (in y and z)."""
    t, n = v.frame
    a = np.linspace(-v.depth / 2, v.depth / 2, 25)
    b = np.linspace(-0.5, 0.5, 25)
    a, b = np.meshgrid(a, b)
    b = b * 2 * v.half_height(a)
    y = v.centre[0] + a * n[0] + b * t[0]
    z = v.centre[1] + a * n[1] + b * t[1]
    ys, zs = grid.axis(1), grid.axis(2)
    half_y, half_z = grid.spacing[1] / 2, grid.spacing[2] / 2
    inside = ((y >= ys[0] - half_y) & (y <= ys[-1] + half_y) & (z >= zs[0] - half_z) & (z <= zs[-1] + half_z))
    return float(inside.mean())


# --- rendering ----------------------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, shape, sigma_vox) -> np.ndarray:
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_vox, mode="reflect",
                                     truncate=3.0)
    return field_ / (field_.std() + 1e-6)


def _roundrect_sdf(x, y, hx, hy, r):
    qx = np.abs(x) - (hx - r)
    qy = np.abs(y) - (hy - r)
    return np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0)) + np.minimum(np.maximum(qx, qy), 0.0) - r


def _line_distance(p0, p1, inner, Y, Z):
    """Signed distance of grid points from the line p0-p1, positive on the side of ``inner``."""
    direction = (p1 - p0) / (np.linalg.norm(p1 - p0) + 1e-9)
    normal = np.array([-direction[1], direction[0]])
    if np.dot(inner - p0, normal) < 0:
        normal = -normal
    return (Y - p0[0]) * normal[0] + (Z - p0[1]) * normal[1]


class _Canvas:
    """One sagittal slice being painted: intensity and label maps on the (z, y) grid."""

    def __init__(self, Y, Z):
        self.Y, self.Z = Y, Z
        self.image = np.zeros(Y.shape, dtype=np.float32)
        self.label = np.zeros(Y.shape, dtype=np.int16)

    def paint(self, where, value, label=None, window=None):
        if window is None:
            window = (slice(None), slice(None))
        image = self.image[window]
        image[where] = value[where] if isinstance(value, np.ndarray) else value
        if label is not None:
            self.label[window][where] = label


def _window(grid_y, grid_z, centre, radius):
    """Row and column slices of the (z, y) grid within ``radius`` mm of ``centre``."""
    ys = np.searchsorted(grid_y, [centre[0] - radius, centre[0] + radius])
    zs = np.searchsorted(grid_z, [centre[1] - radius, centre[1] + radius])
    return slice(int(zs[0]), int(zs[1])), slice(int(ys[0]), int(ys[1]))


def _render(anatomy: _Anatomy, grid: _Grid, tissues: dict, textures: dict):
    """Intensity (relative units) and anatomical labels as [z, y, x] arrays.

    Labels here are anatomical: k for vertebra k, 200 + k for the disc below it, 100 canal.
    """
    nx, ny, nz = grid.size
    xs, ys, zs = grid.axis(0), grid.axis(1), grid.axis(2)
    Z, Y = np.meshgrid(zs, ys, indexing="ij")
    tree = cKDTree(anatomy.wall)
    _, index = tree.query(np.stack([Y.ravel(), Z.ravel()], axis=1))
    index = index.reshape(Y.shape)
    S = anatomy.wall_s[index]
    D = ((Y - anatomy.wall[index, 0]) * anatomy.wall_normal[index, 0]
         + (Z - anatomy.wall[index, 1]) * anatomy.wall_normal[index, 1])
    f32 = np.float32
    S, D = S.astype(f32), D.astype(f32)
    canal_depth = _canal_depth(anatomy, S).astype(f32)
    canal_back = anatomy.canal_gap + canal_depth
    amp, wavelength, phase = anatomy.skin_wave
    skin = (anatomy.skin_depth + amp * np.sin(2 * np.pi * S / wavelength + phase)).astype(f32)
    c0, c1, c2, zc = anatomy.abdomen
    front = (c0 + c1 * (Z - zc) + c2 * (Z - zc) ** 2).astype(f32)
    # Depth of the column in front of the wall, along the canal curve.
    s_levels = np.array([v.s for v in anatomy.vertebrae])
    depth_levels = np.array([v.depth for v in anatomy.vertebrae])
    column_depth = np.interp(S, s_levels, depth_levels).astype(f32)
    mids = [v.x_mid for v in anatomy.vertebrae]
    row_mid = np.interp(Z[:, :1], [v.centre[1] for v in anatomy.vertebrae], mids)  # (nz, 1)
    sacrum_tree = cKDTree(anatomy.sacrum_line)
    sac_dist, sac_index = sacrum_tree.query(np.stack([Y.ravel(), Z.ravel()], axis=1),
                                            distance_upper_bound=anatomy.sacrum_depth)
    sac_index = np.minimum(sac_index, len(anatomy.sacrum_line) - 1).reshape(Y.shape)
    sac_dist = sac_dist.reshape(Y.shape)
    t_s, n_s = _frame(anatomy.sacrum_phi)
    below_s1 = ((Y - anatomy.sacrum_centre[0]) * t_s[0] + (Z - anatomy.sacrum_centre[1]) * t_s[1]) <= 0
    sac_s = sac_index.astype(np.float32)  # mm along the sacrum (1 mm steps)

    image = np.zeros((nz, ny, nx), dtype=np.float32)
    label = np.zeros((nz, ny, nx), dtype=np.int16)
    T = tissues
    for i in range(nx):
        canvas = _Canvas(Y, Z)
        U = xs[i] - row_mid  # (nz, 1) lateral offset of this slice from the midline
        soft, fine, marrow_tex = (textures[name][:, :, i] for name in ("soft", "fine", "marrow"))
        body = (Y > front) & (D < skin)
        # Abdomen / pelvis: bowel loops with fat, fluid and gas.
        bowel = T["bowel"] * (1.0 + 0.25 * fine)
        bowel = np.where(soft > 0.9, T["fat"] * 0.9, bowel)
        bowel = np.where((fine < -1.6) & (soft < 0.5), T["gas"], bowel)
        bowel = np.where((soft < -1.0) & (fine > 0.3), T["fluid"], bowel)
        canvas.paint(body & (D < 0), bowel)
        wall_depth = Y - front
        canvas.paint(body & (D < 0) & (wall_depth < anatomy.abdominal_fat + 9.0),
                     T["muscle"] * (1.0 + 0.08 * fine))
        canvas.paint(body & (D < 0) & (wall_depth < anatomy.abdominal_fat), T["fat"])
        # Back: paraspinal muscle with fatty streaks, subcutaneous fat, skin.
        streaks = np.clip(fine - 1.2, 0.0, 1.0)
        muscle = T["muscle"] * (1.0 + 0.08 * soft) * (1.0 - streaks) + T["fat"] * 0.8 * streaks
        canvas.paint(body & (D >= 0), muscle)
        canvas.paint(body & (D >= 0) & (D > skin - anatomy.fat_thickness), T["fat"])
        canvas.paint(body & (D >= 0) & (D > skin - 1.8), T["skin"])
        # Psoas beside the lumbar bodies, prevertebral fat, aorta.
        lumbar = S < anatomy.vertebrae[min(4, len(anatomy.vertebrae) - 1)].s + 10.0
        psoas = lumbar & (S > anatomy.s_s1 - 20) & (np.abs(U) > 14) & (D < -4) & (D > -column_depth - 14)
        canvas.paint(body & psoas, T["muscle"] * (1.0 + 0.06 * soft))
        canvas.paint(body & (np.abs(U) < 16) & (D < 0) & (D > -column_depth - 4), T["fat"] * 0.9)
        offset, radius, s_bif = anatomy.aorta
        chord = np.sqrt(np.clip(radius ** 2 - (U - offset) ** 2, 0.0, None))
        centre = -column_depth - 4.0 - radius
        canvas.paint(body & (S > s_bif) & (np.abs(D - centre) < chord), T["vessel"])
        # Epidural fat, ligamentum flavum, interspinous ligaments.
        lateral = np.abs(U)
        canvas.paint((D > -0.5) & (D < canal_back + 4.0) & (lateral < anatomy.canal_half_width + 6), T["fat"])
        canvas.paint((D > canal_back) & (D < canal_back + 2.0) & (lateral < anatomy.canal_half_width + 3),
                     T["ligament"])
        # Midline: interspinous ligaments (dark, fatty streaks) up to the spinous tips, then fat.
        midline = lateral < anatomy.spinous_half_width + 1.5
        canvas.paint(midline & (D > canal_back + 2) & (D < skin), T["fat"])
        ligament = np.where(fine > 0.8, T["fat"] * 0.8, T["ligament"] * 2.0)
        canvas.paint(midline & (D > canal_back + 2) & (D < canal_back + anatomy.spinous_reach), ligament)
        canvas.paint(midline & (D > skin - 1.8) & (D < skin), T["skin"])
        _paint_sacrum(canvas, anatomy, T, U, sac_dist, sac_s, below_s1, D, S, canal_back, marrow_tex)
        _paint_canal(canvas, anatomy, T, U, D, S, canal_depth)
        for v in anatomy.vertebrae:
            _paint_posterior(canvas, anatomy, v, T, xs[i] - v.x_mid, D, S, ys, zs)
        for disc in anatomy.discs.values():
            _paint_disc(canvas, anatomy, disc, T, xs[i], ys, zs)
        for v in anatomy.vertebrae:
            _paint_body(canvas, v, T, xs[i] - v.x_mid, ys, zs, marrow_tex)
        image[:, :, i] = canvas.image
        label[:, :, i] = canvas.label
    return image, label


def _paint_sacrum(canvas, anatomy, T, U, dist, along, below_s1, D, S, canal_back, marrow_tex):
    width = np.clip(1.0 - 0.35 * (U / anatomy.sacrum_half_width) ** 2, 0.0, 1.0)
    radius = anatomy.sacrum_radius[along.astype(int)] * width
    bone = (dist < radius) & below_s1 & (np.abs(U) < anatomy.sacrum_half_width)
    value = T["marrow"] * 0.95 * (1.0 + 0.06 * marrow_tex)
    length = len(anatomy.sacrum_line)
    for fraction in (0.2, 0.36, 0.5):  # remnants of the fused sacral discs
        value = np.where(np.abs(along - fraction * length) < 1.2, T["annulus"] * 1.3, value)
    value = np.where(dist > radius - 1.3, T["cortex"], value)
    canvas.paint(bone, value)
    # Dorsal plate of the sacrum behind the sacral canal.
    dorsal = (S < anatomy.s_s1 - 4) & (S > anatomy.s_sacrum_tip + 8) & (D > canal_back + 1.5) \
        & (D < canal_back + 7.0) & (np.abs(U) < anatomy.sacrum_half_width * 0.6)
    canvas.paint(dorsal, np.where(D > canal_back + 5.8, T["cortex"], T["marrow"] * 0.85))


def _paint_canal(canvas, anatomy, T, U, D, S, depth):
    half = np.sqrt(np.clip(1.0 - (U / anatomy.canal_half_width) ** 2, 0.0, None))
    centre = anatomy.canal_gap + depth / 2
    inside = (np.abs(D - centre) < depth / 2 * half) & (S > anatomy.s_sacrum_tip + 5.0)
    value = np.full(D.shape, T["csf"], dtype=np.float32)
    # Spinal cord above the conus, nerve roots of the cauda equina below it (lying posteriorly).
    taper = np.sqrt(np.clip((S - anatomy.s_conus) / 18.0, 0.0, 1.0))
    radius = 0.3 * anatomy.canal_depth * taper
    cord_centre = anatomy.canal_gap + 0.45 * depth
    chord = np.sqrt(np.clip(radius ** 2 - U ** 2, 0.0, None))
    value = np.where(np.abs(D - cord_centre) < chord, T["cord"], value)
    for fraction, thickness, s_end in anatomy.nerve_roots:
        root = (np.abs(D - (anatomy.canal_gap + fraction * depth)) < thickness / 2) & (S < anatomy.s_conus) \
            & (S > s_end) & (np.abs(U) < anatomy.canal_half_width * 0.6)
        value = np.where(root, T["nerve"], value)
    canvas.paint(inside, value, CANAL_LABEL)


def _paint_posterior(canvas, anatomy, v, T, u, D, S, ys, zs):
    """Lamina and spinous process (midline), pedicles and articular pillars (laterally)."""
    t, n = v.frame
    reach = anatomy.canal_gap + anatomy.canal_depth + v.spinous_length
    window = _window(ys, zs, v.centre + n * (v.depth / 2 + reach / 2), reach + v.height)
    D, S = D[window], S[window]
    back = anatomy.canal_gap + float(_canal_depth(anatomy, np.array(v.s)))  # canal's back at this level
    sigma = S - v.s
    delta = D - back
    H = v.height
    lamina = anatomy.lamina_thickness
    wc = anatomy.canal_half_width
    region = np.zeros(D.shape, dtype=bool)
    if abs(u) < wc + 5.0:  # lamina, sloping forward laterally
        shift = -(abs(u) / (wc + 5.0)) * 0.5 * anatomy.canal_depth
        region |= (delta > 0.3 + shift) & (delta < lamina + shift) & (sigma > -0.45 * H) & (sigma < 0.3 * H)
    if abs(u) < anatomy.spinous_half_width:  # spinous process: tapering, pointing down
        f = np.clip(delta / v.spinous_length, 0.0, 1.0)
        mid = -0.075 * H - f * (0.1 * H + v.spinous_drop)
        half = (0.75 + f * (v.spinous_tip - 0.75)) * H / 2
        tip = 1.0 - np.clip((delta - 0.8 * v.spinous_length) / (0.2 * v.spinous_length), 0.0, 1.0) ** 2
        half = half * np.sqrt(np.clip(tip, 0.0, 1.0))
        region |= (delta > 0.3) & (delta < v.spinous_length) & (np.abs(sigma - mid) < half)
    if wc - 1.0 < abs(u) < wc + 9.0:  # pedicle and articular pillar
        region |= (D > -1.5) & (delta < 2.0) & (sigma > -0.05 * H) & (sigma < 0.42 * H)
        region |= (delta > -3.0) & (delta < 13.0) & (sigma > -0.5 * H - 4.0) & (sigma < 0.5 * H + 3.0)
    if wc + 9.0 <= abs(u) < wc + 30.0 and v.k <= 5:  # transverse process
        region |= (delta > -9.0) & (delta < -1.0) & (sigma > 0.0) & (sigma < 0.3 * H)
    region &= canvas.label[window] != CANAL_LABEL  # bone never enters the dural sac
    if not region.any():
        return
    value = np.full(D.shape, T["marrow"] * 0.85 * v.marrow, dtype=np.float32)
    rim = region & ~ndimage.binary_erosion(region)
    value[rim] = T["cortex"]
    canvas.paint(region, value, v.k, window)


def _disc_corners(anatomy, disc, x):
    """Corners of the disc below vertebra ``disc.k`` at world x, or None where it is absent."""
    upper = anatomy.vertebrae[disc.k - 1]
    top = upper.corners(x - upper.x_mid)
    if disc.k == 1:
        _, n_s = _frame(anatomy.sacrum_phi)
        q = abs(x - upper.x_mid) / (anatomy.sacrum_half_width * 0.6)
        if top is None or q >= 1:
            return None
        a_post = anatomy.sacrum_depth / 2 - 0.25 * anatomy.sacrum_depth * q ** 4
        a_ant = -anatomy.sacrum_depth / 2 + 0.75 * anatomy.sacrum_depth * (1 - math.sqrt(1 - q * q))
        c = anatomy.sacrum_centre
        bottom = {("sup", "ant"): c + a_ant * n_s, ("sup", "post"): c + a_post * n_s}
        concavity = 1.0
    else:
        lower = anatomy.vertebrae[disc.k - 2]
        bottom = lower.corners(x - lower.x_mid)
        concavity = lower.concavity
        if bottom is None:
            return None
    if top is None:
        return None
    return top, bottom, max(concavity, upper.concavity)


def _paint_disc(canvas, anatomy, disc, T, x, ys, zs):
    found = _disc_corners(anatomy, disc, x)
    if found is None:
        return
    top, bottom, concavity = found
    ua, up = top[("inf", "ant")], top[("inf", "post")]
    la, lp = bottom[("sup", "ant")], bottom[("sup", "post")]
    middle = (ua + up + la + lp) / 4
    radius = max(np.linalg.norm(ua - lp), np.linalg.norm(up - la)) / 2 + 8.0
    window = _window(ys, zs, middle, radius)
    Y, Z = canvas.Y[window], canvas.Z[window]
    if Y.size == 0:
        return
    d_low = _line_distance(la, lp, middle, Y, Z)
    d_up = _line_distance(ua, up, middle, Y, Z)
    d_ant = _line_distance(la, ua, middle, Y, Z)
    d_post = _line_distance(lp, up, middle, Y, Z)
    tau = np.clip(d_low / np.maximum(d_low + d_up, 1e-3), 0.0, 1.0)
    alpha = np.clip(d_ant / np.maximum(d_ant + d_post, 1e-3), 0.0, 1.0)
    bump = np.clip(1.0 - (2.0 * tau - 1.0) ** 2, 0.0, None)
    margin = 0.5 + concavity * np.clip(1.0 - (2.0 * alpha - 1.0) ** 2, 0.0, None)  # fills concave endplates
    inside = ((d_low > -margin) & (d_up > -margin) & (d_ant > -disc.bulge_ant * bump)
              & (d_post > -disc.bulge_post * bump))
    if not inside.any():
        return
    nucleus = np.clip(1.0 - ((alpha - disc.nucleus_centre) / 0.34) ** 2 - ((tau - 0.5) / 0.38) ** 2, 0.0, 1.0)
    upper = anatomy.vertebrae[disc.k - 1]
    lateral = max(0.0, 1.0 - ((x - upper.x_mid) / (0.8 * upper.half_width)) ** 2)
    nucleus = np.sqrt(nucleus * lateral)
    if disc.cleft:
        nucleus = nucleus * np.where(np.abs(tau - 0.5) < 0.07, 0.6, 1.0)
    bright = T["annulus"] + (T["nucleus"] - T["annulus"]) * (1.0 - 0.7 * disc.degeneration)
    value = (T["annulus"] + (bright - T["annulus"]) * nucleus).astype(np.float32)
    canvas.paint(inside, value, DISC_OFFSET + disc.k, window)


def _paint_body(canvas, v, T, u, ys, zs, marrow_tex):
    walls = v.profile(u)
    if walls is None:
        return
    a_ant, a_post = walls
    window = _window(ys, zs, v.centre, max(v.depth, v.height) * 0.75 + 3.0)
    Y, Z = canvas.Y[window], canvas.Z[window]
    if Y.size == 0:
        return
    t, n = v.frame
    a = (Y - v.centre[0]) * n[0] + (Z - v.centre[1]) * n[1]
    b = along = (Y - v.centre[0]) * t[0] + (Z - v.centre[1]) * t[1]
    half_depth, a_mid = (a_post - a_ant) / 2, (a_post + a_ant) / 2
    b = b * (v.height / 2) / v.half_height(a)
    b = np.abs(b) + v.concavity * np.clip(1.0 - ((a - a_mid) / half_depth) ** 2, 0.0, None)
    radius = min(v.radius, half_depth - 0.2, v.height / 2 - 0.2)
    sdf = _roundrect_sdf(a - a_mid, b, half_depth, v.height / 2, radius)
    inside = sdf < 0
    if not inside.any():
        return
    value = T["marrow"] * v.marrow * (1.0 + 0.07 * marrow_tex[window])
    if v.lesion is not None:
        la, lb, lr = v.lesion
        spot = np.hypot(a - la, along - lb) < lr
        value = np.where(spot, np.maximum(T["fat"] * 0.95, T["nucleus"] * 0.8), value)
    value = np.where(sdf > -1.3, T["cortex"], value).astype(np.float32)
    canvas.paint(inside, value, v.k, window)


# --- public API ---------------------------------------------------------------------------------

def _check(seed, sequence, numbering) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if sequence not in SEQUENCES:
        raise ConfigError(f"unknown sequence {sequence!r}; valid: {', '.join(SEQUENCES)}")
    if numbering not in NUMBERINGS:
        raise ConfigError(f"unknown numbering {numbering!r}; valid: {', '.join(NUMBERINGS)}")


def _case_plan(seed: int, sequence: str):
    """Anatomy and field of view of a case (shared by every sequence of the same seed)."""
    rng = np.random.default_rng([int(seed), _STREAM_ANATOMY])
    bottom_cut = bool(rng.random() < 0.12)
    top_partial = bool(rng.random() < 0.35)
    n_full = int(rng.integers(5, 10 - int(bottom_cut) - int(top_partial)))
    anatomy = _build_anatomy(rng, n_full + int(bottom_cut) + int(top_partial) + 3)
    grid_rng = np.random.default_rng([int(seed), _STREAM_ANATOMY, _STREAM_SEQUENCE[sequence]
                                      if sequence == "t2_SPACE" else 0])
    grid = _choose_grid(grid_rng, anatomy, bottom_cut, top_partial, n_full, sequence)
    return anatomy, grid


def _spider_labels(anatomical: np.ndarray, anatomy: _Anatomy, grid: _Grid, numbering: str) -> np.ndarray:
    """Anatomical labels -> SPIDER values (partial vertebrae 100 + k, chosen numbering)."""
    lut = np.zeros(DISC_OFFSET + len(anatomy.vertebrae) + 1, dtype=np.int16)
    lut[CANAL_LABEL] = CANAL_LABEL
    for v in anatomy.vertebrae:
        value = v.k if numbering == "bottom_up" else 25 - v.k
        partial = _visible_fraction(v, grid) < FULLY_VISIBLE
        lut[v.k] = value + (PARTIAL_OFFSET if partial else 0)
        lut[DISC_OFFSET + v.k] = DISC_OFFSET + value
    return lut[anatomical]


def _intensities(rng: np.random.Generator, sequence: str) -> dict:
    return {name: value * rng.uniform(0.88, 1.12) for name, value in _TISSUES[sequence].items()}


def _acquire(relative: np.ndarray, grid: _Grid, rng: np.random.Generator) -> np.ndarray:
    """Blur, bias field, contrast, scale and Rician noise -> int16 MRI-like intensities."""
    dx, dy, dz = grid.spacing
    image = ndimage.gaussian_filter(relative, sigma=(0.7 / dz + 0.25, 0.7 / dy + 0.25, 0.0))
    nx, ny, nz = grid.size
    zn = np.linspace(-1.0, 1.0, nz)[:, None, None]
    yn = np.linspace(-1.0, 1.0, ny)[None, :, None]
    xn = np.linspace(-1.0, 1.0, nx)[None, None, :]
    c = rng.uniform(-0.2, 0.2, size=6)
    coil = rng.uniform(0.15, 0.6)  # receive coil behind the patient: brighter posteriorly
    bias = np.exp(c[0] * zn + c[1] * yn + c[2] * zn ** 2 + c[3] * yn ** 2 + c[4] * zn * yn
                  + 0.5 * c[5] * xn ** 2 + coil * (yn - 1.0) / 2)
    image = np.clip(image * bias, 0.0, None) ** rng.uniform(0.8, 1.25)
    scale = rng.uniform(500.0, 1800.0)
    sigma = scale * rng.uniform(0.012, 0.045)
    real = image * scale + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(np.rint(np.hypot(real, imag)), 0, 32767).astype(np.int16)


def _to_image(array: np.ndarray, grid: _Grid, permuted: bool) -> sitk.Image:
    """A [z, y, x] array on ``grid`` as a SimpleITK image, optionally in the permuted direction."""
    origin = np.array(grid.start) + np.array(grid.world_shift)
    spacing = np.array(grid.spacing, dtype=float)
    if not permuted:
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(tuple(spacing))
        image.SetOrigin(tuple(origin))
        image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
        return image
    direction = np.array(PERMUTED_DIRECTION).reshape(3, 3)
    size = np.array(grid.size)
    # New index axis m runs along world axis w[m] with sign sign[m].
    w = np.argmax(np.abs(direction), axis=0)
    sign = direction[w, np.arange(3)]
    data = array.transpose(2, 1, 0)  # [x, y, z]: numpy axis = world axis
    data = data.transpose(w)  # numpy axis m = new index axis m
    for m in range(3):
        if sign[m] < 0:
            data = np.flip(data, axis=m)
    new_origin = origin.copy()
    for m in range(3):
        if sign[m] < 0:
            new_origin[w[m]] += (size[w[m]] - 1) * spacing[w[m]]
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    image.SetSpacing(tuple(spacing[w]))
    image.SetOrigin(tuple(new_origin))
    image.SetDirection(tuple(direction.ravel()))
    return image


def make_case(seed: int, sequence: str = "t1", *, permuted: bool = False,
              numbering: str = "bottom_up") -> tuple[sitk.Image, sitk.Image]:
    """(image, mask) 3D volumes with SPIDER geometry and labels.

    The anatomy and field of view depend on ``seed`` only (so ``t1`` and ``t2`` of one seed are
    the same patient, as in SPIDER); contrast, bias field and noise on ``(seed, sequence)``.
    The image is int16 MRI-like intensities (roughly 0-2500), the mask int16 SPIDER values.
    ``permuted`` stores the same physical volume with :data:`PERMUTED_DIRECTION`.
    """
    _check(seed, sequence, numbering)
    anatomy, grid = _case_plan(seed, sequence)
    nx, ny, nz = grid.size
    dx, dy, dz = grid.spacing
    texture_rng = np.random.default_rng([int(seed), _STREAM_TEXTURE])
    textures = {name: _smooth_noise(texture_rng, (nz, ny, nx), (mm / dz, mm / dy, mm / dx))
                for name, mm in (("soft", 7.0), ("fine", 2.0), ("marrow", 1.5))}
    sequence_rng = np.random.default_rng([int(seed), _STREAM_SEQUENCE[sequence]])
    tissues = _intensities(sequence_rng, sequence)
    relative, anatomical = _render(anatomy, grid, tissues, textures)
    image = _acquire(relative, grid, sequence_rng)
    mask = _spider_labels(anatomical, anatomy, grid, numbering)
    return _to_image(image, grid, permuted), _to_image(mask, grid, permuted)


def make_slice(seed: int, sequence: str = "t1", size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The central sagittal slice of ``make_case(seed, sequence)`` resampled to ``size`` x ``size``.

    Rows run superior -> inferior, columns anterior -> posterior (the radiological sagittal view).
    Returns (image float32 in the case's intensity units, mask int16 SPIDER values).
    """
    image, mask = make_case(seed, sequence)
    volume = sitk.GetArrayFromImage(image)  # [z, y, x], z toward superior
    labels = sitk.GetArrayFromImage(mask)
    centre = volume.shape[2] // 2
    picture = volume[::-1, :, centre].astype(np.float32)
    label = labels[::-1, :, centre]
    rows = np.linspace(0, picture.shape[0] - 1, size)
    cols = np.linspace(0, picture.shape[1] - 1, size)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    picture = ndimage.map_coordinates(picture, [rr, cc], order=1).astype(np.float32)
    label = label[np.rint(rr).astype(int), np.rint(cc).astype(int)].astype(np.int16)
    return picture, label


def case_seed(seed: int, patient: int) -> int:
    """The seed of ``patient`` in an archive made from ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(patient)]).generate_state(1, dtype=np.uint32)[0])


def archive_plan(n_patients: int = 40, seed: int = 0, sequences=("t1", "t2"), *,
                 permuted_fraction: float = 0.1, top_down_fraction: float = 0.3) -> list[dict]:
    """The cases :func:`write_archive` writes: one dict per (patient, sequence) with ``patient``,
    ``sequence``, ``seed`` (the case seed), ``permuted`` and ``numbering``, all drawn from ``seed``."""
    for sequence in sequences:
        _check(seed, sequence, NUMBERINGS[0])
    if not (0.0 <= permuted_fraction <= 1.0 and 0.0 <= top_down_fraction <= 1.0):
        raise ConfigError("permuted_fraction and top_down_fraction must lie in [0, 1]")
    plan = []
    for patient in range(1, int(n_patients) + 1):
        patient_seed = case_seed(seed, patient)
        for sequence in sequences:
            choice = np.random.default_rng([patient_seed, 100 + _STREAM_SEQUENCE[sequence]])
            permuted = bool(choice.random() < permuted_fraction)
            numbering = "top_down" if choice.random() < top_down_fraction else "bottom_up"
            plan.append(dict(patient=patient, sequence=sequence, seed=patient_seed, permuted=permuted,
                             numbering=numbering))
    return plan


def write_archive(root, n_patients: int = 40, seed: int = 0, sequences=("t1", "t2"), *,
                  permuted_fraction: float = 0.1, top_down_fraction: float = 0.3, keep_existing: bool = False,
                  only=None) -> Path:
    """Write a SPIDER-layout folder (``images/``, ``masks/``) of phantom cases; return ``root``.

    Patients are numbered 1..``n_patients``; patient p is ``make_case(case_seed(seed, p), ...)``
    for each sequence (one anatomy, several contrasts), stored with the permuted direction with
    probability ``permuted_fraction`` and numbered top-down (17-24) with probability
    ``top_down_fraction``, both drawn per (patient, sequence) from the seed (see
    :func:`archive_plan`). Every file is written atomically, so an interrupted run leaves no
    half-written file, and calling it twice gives the same files. With ``keep_existing``, a case
    whose image and mask are both there already (an interrupted run's, or linked from another
    archive of the same seed, where patient p is the same case) is not made again. With ``only``
    (patient numbers), only those patients' cases are written.
    """
    plan = archive_plan(n_patients, seed, sequences, permuted_fraction=permuted_fraction,
                        top_down_fraction=top_down_fraction)
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for item in plan:
        if only is not None and item["patient"] not in only:
            continue
        name = f"{item['patient']}_{item['sequence']}.mha"
        if keep_existing and (root / "images" / name).is_file() and (root / "masks" / name).is_file():
            continue
        image, mask = make_case(item["seed"], item["sequence"], permuted=item["permuted"],
                                numbering=item["numbering"])
        write_volume(image, root / "images" / name)
        write_volume(mask, root / "masks" / name)
    return root
