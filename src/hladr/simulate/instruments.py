"""Instrument profiles for the simulator: channel names, ranges, optics and PE response.

Each :class:`InstrumentProfile` describes one cytometer convention the way its
acquisition software writes FCS files ($PnN/$PnS, $PnR, $DATATYPE, byte order,
$SPILLOVER by name or by parameter number) plus the physics the simulator needs
(PE response, photon statistics, electronic noise, spillover); :func:`acquire`
turns dye amounts into the values such an instrument writes. Every channel
carries a ``role`` so tests know the truth; the analysis must find channels from
the names alone and never reads these profiles.

Roles: ``fsc_a``, ``fsc_h``, ``ssc_a``, ``ssc_h``, ``fitc`` (empty detector, only
autofluorescence), ``pe`` (HLA-DR PE), ``cd14`` (CD14 PerCP-Cy5.5), ``cd45`` and
``time``. The spillover matrix is indexed by the fluorescence roles in the
order of :data:`FLUOR_ROLES` (rows = source dye, columns = detector).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError

__all__ = [
    "Channel",
    "InstrumentProfile",
    "PEResponse",
    "INSTRUMENTS",
    "FLUOR_ROLES",
    "M_REF",
    "get_instrument",
    "acquire",
]

FLUOR_ROLES = ("fitc", "pe", "cd14", "cd45")
# PE molecules at which a profile's ``high_bead_fraction`` is defined (about the
# QuantiBRITE high bead); also the point where the local gain is taken.
M_REF = 65_000.0
# Centre of the log-log curvature term.
_X0 = 3.5


@dataclass(frozen=True)
class PEResponse:
    """PE detector response: MFI = 10**(c0 + c1*log10(m) + c2*(log10(m) - 3.5)**2).

    ``m`` is PE molecules in the event (antibodies bound, 1 PE per antibody, plus
    autofluorescence); the MFI is on the linear, compensated PE scale. ``c0``
    already includes the detector gain at ``voltage``.
    """

    c0: float
    c1: float
    c2: float
    voltage: float
    voltage_exponent: float

    def mfi(self, molecules: np.ndarray | float) -> np.ndarray:
        """Noise-free MFI for ``molecules`` PE (0 for molecules <= 0)."""
        m = np.asarray(molecules, dtype=np.float64)
        x = np.log10(np.where(m > 0, m, 1.0))
        out = 10.0 ** (self.c0 + self.c1 * x + self.c2 * (x - _X0) ** 2)
        return np.where(m > 0, out, 0.0)

    def at_voltage(self, voltage: float) -> PEResponse:
        """The same detector at another PE voltage/gain (gain ~ voltage**exponent)."""
        shift = self.voltage_exponent * math.log10(float(voltage) / self.voltage)
        return replace(self, c0=self.c0 + shift, voltage=float(voltage))

    def units_per_molecule(self) -> float:
        """Local gain (MFI per PE molecule) near the high bead."""
        return float(self.mfi(M_REF)) / M_REF

    def to_dict(self) -> dict:
        return {
            "formula": "MFI = 10**(c0 + c1*log10(m) + c2*(log10(m) - 3.5)**2)",
            "c0": self.c0,
            "c1": self.c1,
            "c2": self.c2,
            "pe_voltage": self.voltage,
            "voltage_exponent": self.voltage_exponent,
        }


@dataclass(frozen=True)
class Channel:
    """One FCS parameter: $PnN, $PnS ("" for none), role and $PnV."""

    pnn: str
    pns: str
    role: str
    voltage: float | None = None


@dataclass(frozen=True)
class InstrumentProfile:
    """How one cytometer convention writes files, and its optics."""

    key: str
    cyt: str
    cytsn: str
    software: tuple[str, str]  # (keyword, value), e.g. ("CREATOR", "BD FACSDiva ...")
    channels: tuple[Channel, ...]
    pnr: float
    datatype: str  # "F" or "I"
    bits: int
    byteorder: str
    spillover: tuple[tuple[float, ...], ...]  # FLUOR_ROLES x FLUOR_ROLES
    spillover_by_number: bool
    timestep: float
    # physics
    high_bead_fraction: float  # nominal MFI of M_REF PE molecules / PnR
    c1_range: tuple[float, float]
    c2_max: float
    c0_jitter: float  # day-to-day shift of log10 gain, +-
    voltage_exponent: float
    photoelectrons_per_molecule: float
    electronic_sd: float  # channel units
    scatter_scale: float  # scatter positions are fractions of PnR * scatter_scale
    floor: float | None  # lowest value written (None: negatives kept, as FACSDiva does)

    def role_index(self, role: str) -> int:
        """Column of the channel with ``role`` (KeyError if absent)."""
        for j, ch in enumerate(self.channels):
            if ch.role == role:
                return j
        raise KeyError(f"{self.key}: no channel with role {role!r}")

    def channel(self, role: str) -> Channel:
        return self.channels[self.role_index(role)]

    @property
    def pe_voltage(self) -> float:
        return float(self.channel("pe").voltage or 1.0)

    def nominal_response(self) -> PEResponse:
        """PE response at the reference voltage: mid-range c1, c2 = 0, no day effects."""
        c1 = 0.5 * (self.c1_range[0] + self.c1_range[1])
        c0 = math.log10(self.high_bead_fraction * self.pnr) - c1 * math.log10(M_REF)
        return PEResponse(c0, c1, 0.0, self.pe_voltage, self.voltage_exponent)

    def draw_response(self, rng: np.random.Generator) -> PEResponse:
        """A day's PE response: c1 in ``c1_range``, |c2| <= ``c2_max``, c0 jittered."""
        c1 = float(rng.uniform(*self.c1_range))
        c2 = float(rng.uniform(-self.c2_max, self.c2_max))
        x_ref = math.log10(M_REF)
        c0 = (
            math.log10(self.high_bead_fraction * self.pnr)
            - c1 * x_ref
            - c2 * (x_ref - _X0) ** 2
            + float(rng.uniform(-self.c0_jitter, self.c0_jitter))
        )
        return PEResponse(c0, c1, c2, self.pe_voltage, self.voltage_exponent)

    def spillover_keyword(self, channels: tuple[Channel, ...]) -> str:
        """$SPILLOVER text for the fluorescence channels among ``channels`` (file order).

        BD and CytExpert name the detectors; Beckman's Navios writes 1-based
        parameter numbers instead.
        """
        cols = [(j, ch) for j, ch in enumerate(channels) if ch.role in FLUOR_ROLES]
        idx = [FLUOR_ROLES.index(ch.role) for _, ch in cols]
        if self.spillover_by_number:
            names = [str(j + 1) for j, _ in cols]
        else:
            names = [ch.pnn for _, ch in cols]
        values = [f"{self.spillover[i][k]:.4f}" for i in idx for k in idx]
        return ",".join([str(len(cols)), *names, *values])


def _canto() -> InstrumentProfile:
    return InstrumentProfile(
        key="canto",
        cyt="FACSCanto II",
        cytsn="V33896202",
        software=("CREATOR", "BD FACSDiva Software Version 8.0.1"),
        channels=(
            Channel("FSC-A", "", "fsc_a", 380),
            Channel("FSC-H", "", "fsc_h", 380),
            Channel("SSC-A", "", "ssc_a", 440),
            Channel("FITC-A", "", "fitc", 500),
            Channel("PE-A", "HLA-DR PE", "pe", 520),
            Channel("PerCP-Cy5.5-A", "CD14 PerCP-Cy5.5", "cd14", 610),
            Channel("V500-A", "CD45 V500", "cd45", 480),
            Channel("Time", "", "time"),
        ),
        pnr=262144.0,
        datatype="F",
        bits=32,
        byteorder="big",
        spillover=(
            (1.0, 0.245, 0.031, 0.0),  # FITC
            (0.012, 1.0, 0.152, 0.0),  # PE
            (0.0, 0.021, 1.0, 0.0),  # PerCP-Cy5.5
            (0.082, 0.002, 0.0, 1.0),  # V500
        ),
        spillover_by_number=False,
        timestep=0.01,
        high_bead_fraction=0.45,
        c1_range=(0.96, 1.02),
        c2_max=0.006,
        c0_jitter=0.04,
        voltage_exponent=7.0,
        photoelectrons_per_molecule=0.25,
        electronic_sd=30.0,
        scatter_scale=1.0,
        floor=None,
    )


def _cytoflex() -> InstrumentProfile:
    return InstrumentProfile(
        key="cytoflex",
        cyt="CytoFLEX",
        cytsn="AW14014",
        software=("CREATOR", "CytExpert 2.4.0.28"),
        channels=(
            Channel("FSC-H", "", "fsc_h", 100),
            Channel("FSC-A", "", "fsc_a", 100),
            Channel("SSC-H", "", "ssc_h", 80),
            Channel("SSC-A", "", "ssc_a", 80),
            Channel("FITC-A", "", "fitc", 120),
            Channel("PE-A", "HLA-DR PE", "pe", 100),
            Channel("PC5.5-A", "CD14 PerCP-Cy5.5", "cd14", 250),
            Channel("KO525-A", "CD45 KrO", "cd45", 150),
            Channel("Time", "", "time"),
        ),
        pnr=16777216.0,  # 2**24, as CytExpert writes
        datatype="F",
        bits=32,
        byteorder="little",
        spillover=(
            (1.0, 0.180, 0.020, 0.0),  # FITC
            (0.008, 1.0, 0.118, 0.0),  # PE
            (0.0, 0.012, 1.0, 0.0),  # PerCP-Cy5.5
            (0.060, 0.002, 0.0, 1.0),  # KrO
        ),
        spillover_by_number=False,
        timestep=0.01,
        high_bead_fraction=0.30,
        c1_range=(0.98, 1.04),
        c2_max=0.005,
        c0_jitter=0.03,
        voltage_exponent=1.0,  # APD gain setting, signal proportional to gain
        photoelectrons_per_molecule=0.35,
        electronic_sd=400.0,
        scatter_scale=0.4,
        floor=0.0,
    )


def _navios() -> InstrumentProfile:
    return InstrumentProfile(
        key="navios",
        cyt="Navios",
        cytsn="AX13028",
        software=("$SYS", "Navios 1.3"),
        channels=(
            Channel("FS INT", "", "fsc_a", 260),
            Channel("FS PEAK", "", "fsc_h", 260),
            Channel("SS INT", "", "ssc_a", 450),
            Channel("FL1 INT", "", "fitc", 560),
            Channel("FL2 INT", "HLA-DR PE", "pe", 540),
            Channel("FL4 INT", "CD14 PerCP-Cy5.5", "cd14", 650),
            Channel("FL10 INT", "CD45 KrO", "cd45", 500),
            Channel("TIME", "", "time"),
        ),
        pnr=1048576.0,  # 20-bit values in 32-bit words
        datatype="I",
        bits=32,
        byteorder="little",
        spillover=(
            (1.0, 0.210, 0.026, 0.0),  # FITC
            (0.010, 1.0, 0.175, 0.0),  # PE
            (0.0, 0.027, 1.0, 0.0),  # PerCP-Cy5.5
            (0.070, 0.002, 0.0, 1.0),  # KrO
        ),
        spillover_by_number=True,
        timestep=0.1,
        high_bead_fraction=0.35,
        c1_range=(0.95, 1.01),
        c2_max=0.008,
        c0_jitter=0.05,
        voltage_exponent=7.0,
        photoelectrons_per_molecule=0.20,
        electronic_sd=100.0,
        scatter_scale=1.0,
        floor=0.0,
    )


INSTRUMENTS: dict[str, InstrumentProfile] = {
    p.key: p for p in (_canto(), _cytoflex(), _navios())
}


def get_instrument(instrument: str | InstrumentProfile) -> InstrumentProfile:
    """A profile by key (``canto``, ``cytoflex``, ``navios``) or the profile itself."""
    if isinstance(instrument, InstrumentProfile):
        return instrument
    try:
        return INSTRUMENTS[str(instrument).lower()]
    except KeyError:
        known = ", ".join(INSTRUMENTS)
        raise ConfigError(f"unknown instrument {instrument!r} (known: {known})") from None


def acquire(
    rng: np.random.Generator,
    profile: InstrumentProfile,
    response: PEResponse,
    channels: tuple[Channel, ...],
    ev: dict,
) -> tuple[np.ndarray, np.ndarray]:
    """Detector values as written, and the noise-free compensated PE, for dye amounts.

    Parameters
    ----------
    rng : numpy Generator
    profile : InstrumentProfile
    response : PEResponse
        The PE response at the tube's voltage.
    channels : tuple of Channel
        The file's channels, in order.
    ev : dict of (N,) arrays
        ``fsc``, ``fsc_h``, ``ssc``, ``ssc_h`` (fractions of the scatter range) and
        ``abc``, ``af_pe`` (PE molecules), ``fitc``, ``cd14``, ``cd45`` (molecules of
        dye, read at the nominal gain).

    Returns
    -------
    data : (N, D) float64 ndarray
        Float32-rounded (F) or integer (I) values, clipped at $PnR - 1.
    pe_true : (N,) float64 ndarray
        Noise-free PE MFI (compensated scale).

    Notes
    -----
    ``observed = signals @ S``; photon noise with variance ``q * observed`` (q =
    channel units per photoelectron) and Gaussian electronic noise are added per
    detector, then values are clipped (saturation) and floored where the
    instrument writes no negatives.
    """
    n = len(ev["fsc"])
    pe_true = response.mfi(ev["abc"] + ev["af_pe"])
    u = profile.nominal_response().units_per_molecule()
    signal = {"fitc": ev["fitc"] * u, "pe": pe_true, "cd14": ev["cd14"] * u, "cd45": ev["cd45"] * u}
    roles = [ch.role for ch in channels if ch.role in FLUOR_ROLES]
    idx = [FLUOR_ROLES.index(r) for r in roles]
    s = np.asarray(profile.spillover)[np.ix_(idx, idx)]
    observed = np.column_stack([signal[r] for r in roles]) @ s
    q_photon = np.array(
        [(response.units_per_molecule() if r == "pe" else u) / profile.photoelectrons_per_molecule
         for r in roles]
    )
    var = q_photon * np.clip(observed, 0.0, None) + profile.electronic_sd**2
    observed = observed + np.sqrt(var) * rng.standard_normal(observed.shape)
    top = profile.pnr - 1.0
    full = profile.pnr * profile.scatter_scale
    scatter = {
        r: np.clip(ev[k] * full + rng.normal(0.0, profile.electronic_sd, n), 0.0, top)
        for r, k in (("fsc_a", "fsc"), ("fsc_h", "fsc_h"), ("ssc_a", "ssc"), ("ssc_h", "ssc_h"))
    }
    rate = rng.uniform(800.0, 1500.0)  # events per second
    seconds = np.sort(rng.uniform(0.0, n / rate, n))
    cols = []
    for ch in channels:
        if ch.role in scatter:
            cols.append(scatter[ch.role])
        elif ch.role == "time":
            cols.append(np.minimum(seconds / profile.timestep, top))
        else:
            v = np.minimum(observed[:, roles.index(ch.role)], top)
            cols.append(v if profile.floor is None else np.maximum(v, profile.floor))
    data = np.column_stack(cols)
    if profile.datatype == "I":
        data = np.rint(data)
    else:
        data = data.astype(np.float32).astype(np.float64)
    return data, pe_true
