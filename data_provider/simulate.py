"""Simulate a virtual type-1-diabetes cohort with simglucose: each patient's events, in the OhioT1DM fields.

Why: OhioT1DM is licensed and cannot ship with the repository, so the pipeline needs a stand-in that goes through the
same reader and has the same irregularities: unaligned sensor clocks, dropouts, sensor changes, logged meals and
boluses that do not match what happened. The physiology is simglucose's UVa/Padova model (``T1DPatient``, its ODE
and 1-minute step unchanged) with simglucose's GuardianRT sensor noise; what is ours is the patient's behaviour
(meals, carb counting, bolus adherence, hypo treatment, correction boluses, pump suspend) and the sensor's dropouts.
Behaviour settings were tuned so that the cohort's persistence baseline is close to OhioT1DM's.

Speed: the patient is stepped directly instead of through simglucose's gym environment, and its parameters are
handed over as a plain namespace instead of a pandas Series: the ODE right-hand side reads about 40 parameters per
call, and Series attribute access made it ~13x slower without changing a single number.

This module ends at a :class:`SimulatedPatient` (events in memory); ``data_provider.cohort_files`` writes it as
OhioT1DM XML files and computes the cohort README's per-patient numbers.
"""

from __future__ import annotations

import math
import types
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from data_provider.ohio import FIELDS  # events are kept per OhioT1DM field, ready to be written in its layout

with warnings.catch_warnings():
    # simglucose (and the gym it imports) use pkg_resources and distutils; the deprecation noise is not ours.
    warnings.simplefilter("ignore")
    import pandas as pd
    from simglucose.patient.t1dpatient import PATIENT_PARA_FILE, Action, T1DPatient
    from simglucose.sensor.cgm import SENSOR_PARA_FILE
    from simglucose.sensor.noise_gen import CGMNoise
    from simglucose.controller.basal_bolus_ctrller import CONTROL_QUEST

FIRST_PATIENT_ID = 1001
# Adults first: they are the closest match to the OhioT1DM cohort (adults on pumps); adolescents only beyond ten.
VIRTUAL_PATIENTS = tuple(f"adult#{i:03d}" for i in range(1, 11)) + tuple(f"adolescent#{i:03d}" for i in range(1, 11))
SENSOR = "GuardianRT"  # Medtronic's sensor family, as in OhioT1DM; 5-minute samples
CGM_RANGE = (40, 400)  # what Medtronic sensors report, and what OhioT1DM contains
WARMUP_DAYS = 1.0  # simulated but not written: leaves simglucose's fasting steady state behind
FIRST_START = datetime(2025, 1, 6)  # shifted dates, like OhioT1DM's de-identified future years
GLUCOSE_TARGET = 120.0  # bolus-wizard target, mg/dL
INSULIN_ACTION_MIN = 240  # bolus-wizard active-insulin time (linear decay)
CGM_PERIOD_S = 300
EPOCH = datetime(1970, 1, 1)  # naive, like the timestamps: no time zone or DST shifts


@dataclass(frozen=True)
class Behaviour:
    """How one virtual patient lives with diabetes; drawn per patient so the cohort has easy and hard patients."""

    meal_scale: float  # multiplies the cohort's typical meal sizes
    meal_cv: float  # day-to-day variation of a meal's carbs (lognormal sigma)
    meal_time_sd_min: float  # day-to-day variation of meal times
    snacks_per_day: float  # mean number of snacks (Poisson, at most 2)
    snack_bolus_prob: float
    carb_error_sigma: float  # carb-count error (lognormal sigma) of what is entered into the bolus wizard
    miss_bolus_prob: float  # main meal without a bolus
    late_bolus_prob: float  # bolus 10-30 min after the meal starts
    prebolus_prob: float  # bolus 5-20 min before the meal
    correction_prob: float  # per minute while the CGM is high and the patient awake: chance to correct now
    basal_factor: float  # mis-tuned basal (1 = simglucose's steady-state basal)
    cr_factor: float  # mis-tuned carb ratio (>1 = too little insulin per gram)
    suspend: bool  # uses the pump's threshold suspend (written as temp_basal 0)
    dropouts_per_day: float
    noise_scale: float  # multiplies simglucose's GuardianRT noise
    finger_stick_prob: float  # chance of a finger stick before a bolus


def draw_behaviour(rng: np.random.Generator) -> Behaviour:
    """Draw one patient's behaviour; a single ``difficulty`` in [0, 1] moves all habits together, plus jitter."""
    difficulty = float(rng.uniform(0.0, 1.0))

    def jitter(low: float, high: float) -> float:
        x = low + (high - low) * difficulty
        return float(x * rng.uniform(0.85, 1.15))

    return Behaviour(
        meal_scale=float(rng.uniform(0.95, 1.35)),
        meal_cv=jitter(0.25, 0.45),
        meal_time_sd_min=jitter(20.0, 60.0),
        snacks_per_day=jitter(0.4, 1.6),
        snack_bolus_prob=jitter(0.7, 0.3),
        carb_error_sigma=jitter(0.25, 0.4),
        miss_bolus_prob=jitter(0.05, 0.2),
        late_bolus_prob=jitter(0.2, 0.45),
        prebolus_prob=jitter(0.2, 0.0),
        correction_prob=jitter(0.03, 0.008),
        basal_factor=float(rng.uniform(0.85, 1.05)),
        cr_factor=float(rng.uniform(1.1, 1.4)),
        suspend=bool(rng.uniform() < 0.5),
        dropouts_per_day=jitter(0.4, 1.8),
        noise_scale=float(rng.uniform(0.7, 0.9)),
        finger_stick_prob=float(rng.uniform(0.4, 0.8)),
    )


@dataclass(frozen=True)
class PatientSpec:
    """Everything that determines one patient's files: same spec, same bytes."""

    patient_id: int
    virtual_patient: str
    seed: int  # this patient's own seed, derived from the cohort seed
    train_days: float
    test_days: float


def cohort_specs(n_patients: int, train_days: float, test_days: float, seed: int) -> list[PatientSpec]:
    """The cohort's patients: ids 1001.., virtual patients adult#001.., seeds spawned from the master seed.

    Spawning (rather than seed + i) keeps patients' random streams independent, and patient i's files do not depend
    on how many patients are generated.
    """
    children = np.random.SeedSequence(seed).spawn(n_patients)
    return [
        PatientSpec(
            patient_id=FIRST_PATIENT_ID + i,
            virtual_patient=VIRTUAL_PATIENTS[i],
            seed=int(child.generate_state(1)[0]),
            train_days=train_days,
            test_days=test_days,
        )
        for i, child in enumerate(children)
    ]


Event = tuple[datetime, dict[str, object]]  # (when it counts for the train/test split, attributes in file order)


@dataclass
class SimulatedPatient:
    """A simulated patient's events over warm-up, training and testing, and the split times."""

    spec: PatientSpec
    weight_kg: float
    train_start: datetime
    test_start: datetime
    test_end: datetime
    events: dict[str, list[Event]] = field(default_factory=lambda: {name: [] for name in FIELDS})


# (type, clock hour, typical carbs g); snack slots are (clock hour, hour spread).
_MEALS = (("Breakfast", 7.5, 50.0), ("Lunch", 12.5, 70.0), ("Dinner", 19.0, 85.0))
_SNACK_SLOTS = ((10.0, 1.0), (15.5, 1.0), (21.5, 1.0))
_BASAL_SEGMENTS = (0.0, 4.0, 9.0, 17.0)  # clock hours where the pump's basal profile changes


def _load_params(name: str) -> tuple[types.SimpleNamespace, np.ndarray, float, float]:
    """Patient parameters as a fast namespace, its initial state, and its carb ratio and correction factor."""
    table = pd.read_csv(PATIENT_PARA_FILE)
    row = table.loc[table.Name == name].squeeze()
    quest = pd.read_csv(CONTROL_QUEST)
    q = quest.loc[quest.Name == name].squeeze()
    init = np.asarray(row.iloc[2:15].values, dtype=float)
    return types.SimpleNamespace(**row.to_dict()), init, float(q.CR), float(q.CF)


def _sensor_params() -> pd.Series:
    table = pd.read_csv(SENSOR_PARA_FILE)
    return table.loc[table.Name == SENSOR].squeeze()


class _Run:
    """One patient's minute-by-minute simulation: physiology, patient/pump decisions, sensor readings."""

    def __init__(self, spec: PatientSpec) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self.behaviour = draw_behaviour(self.rng)
        params, init, self.cr, self.cf = _load_params(spec.virtual_patient)
        self.params = params
        self.patient = T1DPatient(params, init_state=init)
        self.train_start = FIRST_START + timedelta(
            days=int(self.rng.integers(0, 300)), minutes=int(self.rng.integers(0, 1440))
        )
        self.origin = self.train_start - timedelta(days=WARMUP_DAYS)
        self.test_start = self.train_start + timedelta(days=spec.train_days)
        self.test_end = self.test_start + timedelta(days=spec.test_days)
        self.n_minutes = math.ceil((self.test_end - self.origin).total_seconds() / 60)
        self.out = SimulatedPatient(spec, float(params.BW), self.train_start, self.test_start, self.test_end)
        # Schedules, keyed by minute since origin.
        self.eat: dict[int, list[tuple[float, float, str, bool]]] = {}  # carbs, carbs logged, meal type, logged
        self.meal_boluses: dict[int, list[float]] = {}  # estimated carbs to bolus for
        self.basal_changes = self._basal_schedule()
        self._plan_meals()
        self.readings = self._plan_sensor()

    # --- planning -------------------------------------------------------------------------------------------------

    def _minute(self, when: datetime) -> int:
        return int((when - self.origin).total_seconds() // 60)

    def _time(self, minute: float) -> datetime:
        return self.origin + timedelta(minutes=minute)

    def _basal_schedule(self) -> dict[int, float]:
        """Minute -> basal rate (U/h): simglucose's steady-state basal, mis-tuned per patient and per time of day."""
        steady = self.params.u2ss * self.params.BW / 6000 * 60  # U/h
        factors = self.behaviour.basal_factor * self.rng.uniform(0.93, 1.07, size=len(_BASAL_SEGMENTS))
        changes: dict[int, float] = {}
        day = self.origin.replace(hour=0, minute=0, second=0)
        while day < self.test_end:
            for hour, factor in zip(_BASAL_SEGMENTS, factors):
                m = self._minute(day + timedelta(hours=hour))
                changes[max(m, 0)] = round(steady * factor / 0.025) * 0.025  # pump increments of 0.025 U/h
            day += timedelta(days=1)
        return changes

    def _plan_meals(self) -> None:
        b, rng = self.behaviour, self.rng
        day = self.origin.replace(hour=0, minute=0, second=0)
        while day < self.test_end:
            for meal_type, hour, carbs in _MEALS:
                when = day + timedelta(hours=hour, minutes=float(rng.normal(0, b.meal_time_sd_min)))
                grams = carbs * b.meal_scale * float(rng.lognormal(0, b.meal_cv))
                self._add_meal(when, grams, meal_type, bolus_prob=1 - b.miss_bolus_prob, logged_prob=0.95)
            n_snacks = min(int(rng.poisson(b.snacks_per_day)), 2)
            for slot in rng.choice(len(_SNACK_SLOTS), size=n_snacks, replace=False):
                hour, spread = _SNACK_SLOTS[slot]
                when = day + timedelta(hours=hour + float(rng.uniform(-spread, spread)))
                self._add_meal(when, float(rng.uniform(10, 30)), "Snack", b.snack_bolus_prob, logged_prob=0.7)
            day += timedelta(days=1)

    def _add_meal(self, when: datetime, grams: float, meal_type: str, bolus_prob: float, logged_prob: float) -> None:
        b, rng = self.behaviour, self.rng
        m = self._minute(when)
        if m < 0 or m >= self.n_minutes:
            return
        grams = round(grams)
        estimate = max(5.0, 5 * round(grams * float(rng.lognormal(0, b.carb_error_sigma)) / 5))
        self.eat.setdefault(m, []).append((float(grams), estimate, meal_type, bool(rng.uniform() < logged_prob)))
        if rng.uniform() >= bolus_prob:
            return
        u = rng.uniform()
        if u < b.late_bolus_prob:
            offset = rng.uniform(10, 30)
        elif u < b.late_bolus_prob + b.prebolus_prob:
            offset = -rng.uniform(5, 20)
        else:
            offset = rng.uniform(0, 3)
        bm = min(max(m + int(offset), 0), self.n_minutes - 1)
        self.meal_boluses.setdefault(bm, []).append(estimate)

    def _plan_sensor(self) -> list[tuple[float, float]]:
        """(seconds since origin, sensor error) of every CGM reading the sensor delivers.

        Sensors last 7-10 days, then 1-2 h without readings for the change and warm-up; within a session dropouts of
        10 min to a few hours happen at random. After every gap the 5-minute cadence restarts at a new offset, so
        readings are not on clock marks, as in OhioT1DM. Readings fall on whole seconds and never exactly halfway
        between two marks: a 2.5-minute offset would make rounding to the nearest mark (half to even) put every
        other reading on its neighbour's mark.
        """
        b, rng = self.behaviour, self.rng
        sensor = _sensor_params()
        total_s = self.n_minutes * 60.0
        readings: list[tuple[float, float]] = []
        shift = (self.origin - EPOCH).total_seconds() % CGM_PERIOD_S  # origin's position between clock marks

        def cadence_start(after: float) -> float:
            t = math.ceil(after + rng.uniform(0, CGM_PERIOD_S))
            return float(t + 1 if (shift + t) % CGM_PERIOD_S == CGM_PERIOD_S // 2 else t)

        t = cadence_start(0.0)
        session_end = t + rng.uniform(7, 10) * 86400
        noise = CGMNoise(sensor, seed=int(rng.integers(2**31)))
        while t < total_s:
            dropout = t + rng.exponential(1 / b.dropouts_per_day) * 86400
            stop = min(dropout, session_end, total_s)
            while t < stop:
                readings.append((t, b.noise_scale * float(next(noise))))
                t += CGM_PERIOD_S
            if stop == session_end:
                gap = rng.uniform(60, 120) * 60
                session_end = stop + gap + rng.uniform(7, 10) * 86400
                noise = CGMNoise(sensor, seed=int(rng.integers(2**31)))
            else:
                gap = float(np.clip(rng.lognormal(math.log(40), 1.0), 10, 240)) * 60
            t = cadence_start(stop + gap)
        return readings

    # --- simulation -----------------------------------------------------------------------------------------------

    def run(self) -> SimulatedPatient:
        b, rng, p, ev = self.behaviour, self.rng, self.patient, self.out.events
        gsub = np.empty(self.n_minutes + 1)
        gsub[0] = p.observation.Gsub
        boluses: list[tuple[int, float]] = []  # (minute, units) for insulin on board
        last_cgm: tuple[int, float] | None = None  # (minute, value) of the latest reading
        next_reading = 0
        basal = self.basal_changes[0]
        suspended_until = -1
        treated_at = -10**6
        for m in range(self.n_minutes):
            now = self._time(m)
            hour = now.hour + now.minute / 60
            awake = 7 <= hour < 23
            if m in self.basal_changes:
                basal = self.basal_changes[m]
                ev["basal"].append((now, {"ts": now, "value": f"{basal:g}"}))
            fresh = last_cgm if last_cgm is not None and m - last_cgm[0] <= 15 else None
            bg = p.state[3] / self.params.Vg  # plasma glucose: what a finger stick measures and symptoms follow
            carbs = 0.0
            for grams, estimate, meal_type, logged in self.eat.get(m, ()):
                carbs += grams
                if logged:  # patients log their own estimate, not the truth
                    ev["meal"].append((now, {"ts": now, "type": meal_type, "carbs": f"{estimate:g}"}))
            # Hypo treatment: noticed on the CGM (often) or by symptoms (less so when asleep); not bolused.
            low_seen = fresh is not None and fresh[1] < 70 and rng.uniform() < (0.2 if awake else 0.06)
            low_felt = bg < 60 and rng.uniform() < (0.1 if awake else 0.03)
            if (low_seen or low_felt) and m - treated_at >= 20:
                treated_at = m
                grams = float(rng.uniform(15, 25))
                carbs += grams
                if rng.uniform() < 0.7:
                    self._finger_stick(now, bg)
                if rng.uniform() < 0.6:
                    ev["meal"].append((now, {"ts": now, "type": "HypoCorrection", "carbs": f"{round(grams)}"}))
            # Pump threshold suspend on the sensor value (530G style): basal stops for up to two hours.
            if b.suspend and fresh is not None and fresh[1] <= 65 and m >= suspended_until:
                length = int(rng.uniform(30, 120))
                suspended_until = m + length
                end = self._time(m + length)
                ev["temp_basal"].append((now, {"ts_begin": now, "ts_end": end, "value": "0"}))
            bolus = 0.0
            iob = sum(u * (1 - (m - t) / INSULIN_ACTION_MIN) for t, u in boluses if m - t < INSULIN_ACTION_MIN)
            correction = 0.0
            if fresh is not None:
                correction = max(0.0, (fresh[1] - GLUCOSE_TARGET) / self.cf - iob)
            for estimate in self.meal_boluses.get(m, ()):
                bolus += self._bolus(now, estimate / (self.cr * b.cr_factor) + correction, estimate, bg)
                correction = 0.0
            last_bolus = boluses[-1][0] if boluses else -10**6
            if (bolus == 0 and awake and fresh is not None and fresh[1] > 220 and m - last_bolus > 150
                    and correction >= 0.5 and rng.uniform() < b.correction_prob):
                bolus += self._bolus(now, correction, 0.0, bg)
            if bolus > 0:
                boluses.append((m, bolus))
                boluses = [(t, u) for t, u in boluses if m - t < INSULIN_ACTION_MIN]
            rate = 0.0 if m < suspended_until else basal
            p.step(Action(CHO=carbs, insulin=rate / 60 + bolus))
            gsub[m + 1] = p.observation.Gsub
            # Readings that fell inside this minute: interpolate the subcutaneous glucose, add sensor error.
            while next_reading < len(self.readings) and self.readings[next_reading][0] < (m + 1) * 60:
                t_s, err = self.readings[next_reading]
                frac = t_s / 60 - m
                value = int(np.clip(round((1 - frac) * gsub[m] + frac * gsub[m + 1] + err), *CGM_RANGE))
                last_cgm = (m, float(value))
                when = self.origin + timedelta(seconds=round(t_s))
                ev["glucose_level"].append((when, {"ts": when, "value": str(value)}))
                next_reading += 1
        return self.out

    def _bolus(self, now: datetime, units: float, carb_input: float, bg: float) -> float:
        """Deliver a wizard bolus (0.05 U steps) and log it; the patient often checks a finger stick first."""
        units = round(max(units, 0.0) / 0.05) * 0.05
        if units <= 0:
            return 0.0
        if self.rng.uniform() < self.behaviour.finger_stick_prob:
            self._finger_stick(now - timedelta(minutes=float(self.rng.uniform(1, 6))), bg)
        attrs = {"ts_begin": now, "ts_end": now, "type": "normal", "dose": f"{units:.2f}".rstrip("0").rstrip("."),
                 "bwz_carb_input": f"{carb_input:g}"}
        self.out.events["bolus"].append((now, attrs))
        return units

    def _finger_stick(self, when: datetime, bg: float) -> None:
        when = when + timedelta(seconds=int(self.rng.integers(0, 60)))
        value = int(round(bg * (1 + self.rng.normal(0, 0.04))))
        self.out.events["finger_stick"].append((when, {"ts": when, "value": str(value)}))


def simulate_patient(spec: PatientSpec) -> SimulatedPatient:
    """Simulate one patient over warm-up + training + testing days."""
    return _Run(spec).run()
