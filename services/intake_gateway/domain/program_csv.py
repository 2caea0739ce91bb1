"""Reading a treatment-program CSV whose columns follow FindTreatment.gov's facility listing and service codes.

Pure: text in, rows out. Each row's ``services`` cell lists FindTreatment.gov (N-SUMHSS) service codes separated
by spaces, commas or semicolons; ``SERVICE_CODES`` maps the ones the directory understands to its vocabulary
(levels of care, medications, payers, populations, languages). Codes it does not map are ignored and reported
(code -> the line numbers they were on), so an import says what it left out. A row that is missing what a program
needs (a name, an address, coordinates, an intake phone, at least one level of care), or has a value that is not
what its column holds, is a ``CsvRowError`` with its line number (the header is line 1), and then the whole file
is refused.

Columns (header names, case-insensitive): ``name1`` (or ``name``), ``street1``, ``city``, ``state``, ``zip``,
``intake1`` (or ``phone``), ``latitude``, ``longitude``, ``services``; optional ``program_id`` (a UUID, to update
a program in place), ``zone``, ``languages`` (ISO 639 codes besides English and the language service codes) and
``hours`` (``mon-fri 08:00-17:00; sat 09:00-12:00``, or ``24/7``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from uuid import UUID

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY = {day[:3]: day for day in WEEKDAYS}

# code -> (field, value). Values are the contract's vocabularies (services/contract/treatment.py).
SERVICE_CODES: dict[str, tuple[str, str]] = {
    # service setting / type of care -> ASAM level of care
    "HID": ("levels_of_care", "4-WM"),  # hospital inpatient detoxification
    "HIT": ("levels_of_care", "4"),  # hospital inpatient treatment
    "RD": ("levels_of_care", "3.7-WM"),  # residential detoxification
    "RS": ("levels_of_care", "3.5"),  # short-term residential
    "RL": ("levels_of_care", "3.1"),  # long-term residential
    "OD": ("levels_of_care", "1-WM"),  # outpatient detoxification
    "ODT": ("levels_of_care", "2.5"),  # outpatient day treatment or partial hospitalisation
    "OIT": ("levels_of_care", "2.1"),  # intensive outpatient treatment
    "ORT": ("levels_of_care", "1"),  # regular outpatient treatment
    "OMB": ("levels_of_care", "1"),  # outpatient methadone/buprenorphine or naltrexone treatment
    "OTP": ("levels_of_care", "OTP"),  # federally certified opioid treatment program
    # medications for opioid use disorder
    "METH": ("medications", "methadone"),
    "MM": ("medications", "methadone"),  # methadone maintenance
    "BU": ("medications", "buprenorphine"),
    "BUM": ("medications", "buprenorphine"),  # buprenorphine maintenance
    "BSDM": ("medications", "buprenorphine"),  # buprenorphine sub-dermal implant
    "BWN": ("medications", "buprenorphine"),  # buprenorphine with naloxone
    "NU": ("medications", "naltrexone"),
    "NXN": ("medications", "naltrexone"),  # naltrexone (oral)
    "VTRL": ("medications", "naltrexone"),  # extended-release injectable naltrexone
    # payment accepted
    "MD": ("payers", "medicaid"),
    "MC": ("payers", "medicare"),
    "PI": ("payers", "private"),
    "SF": ("payers", "sliding_fee"),
    "NP": ("payers", "free"),  # no payment accepted (free of charge)
    # special programs / populations served
    "ADLT": ("populations", "adults"),
    "ADOL": ("populations", "adolescents"),
    "YAD": ("populations", "young_adults"),
    "SE": ("populations", "seniors"),
    "VET": ("populations", "veterans"),
    "WN": ("populations", "women"),
    "MN": ("populations", "men"),
    "PW": ("populations", "pregnant_postpartum"),
    "CJ": ("populations", "criminal_justice"),
    # languages
    "SP": ("languages", "es"),
    "ASL": ("languages", "ase"),
}

_REQUIRED = ("name", "street", "city", "state", "intake", "latitude", "longitude", "services")
_ALIASES = {
    "name1": "name",
    "name": "name",
    "street1": "street",
    "street": "street",
    "city": "city",
    "state": "state",
    "zip": "zip",
    "intake1": "intake",
    "phone": "intake",
    "latitude": "latitude",
    "longitude": "longitude",
    "services": "services",
    "program_id": "program_id",
    "zone": "zone",
    "languages": "languages",
    "hours": "hours",
}
_SPLIT = re.compile(r"[\s,;]+")
_HOURS = re.compile(
    r"^(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+(?P<opens>\d{2}:\d{2})-(?P<closes>\d{2}:\d{2})$", re.IGNORECASE
)


class CsvRowError(ValueError):
    """The file is refused: ``line`` (1 = the header) and what is wrong with it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass
class ProgramRow:
    """One program as the CSV describes it, in the contract's vocabulary (the phone not yet normalised)."""

    line: int
    name: str
    address: str
    lat: float
    lon: float
    intake_phone: str
    program_id: UUID | None = None
    zone: str | None = None
    levels_of_care: list[str] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)
    payers: list[str] = field(default_factory=list)
    populations: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    hours: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ProgramFile:
    rows: list[ProgramRow]
    ignored_codes: dict[str, list[int]]
    """Service codes not mapped, each with the lines it was on."""


def read_program_csv(text: str) -> ProgramFile:
    """Every row of the file, or CsvRowError for the first bad one (nothing is half-read)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvRowError(1, "the file is empty") from None
    columns = [_ALIASES.get(name.strip().lower()) for name in header]
    missing = [name for name in _REQUIRED if name not in columns]
    if missing:
        raise CsvRowError(1, f"missing column(s): {', '.join(missing)}")
    rows: list[ProgramRow] = []
    ignored: dict[str, list[int]] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise CsvRowError(line, f"{len(cells)} cells, the header has {len(header)}")
        values = {name: cell.strip() for name, cell in zip(columns, cells, strict=True) if name is not None}
        rows.append(_row(line, values, ignored))
    if not rows:
        raise CsvRowError(2, "no programs in the file")
    return ProgramFile(rows, ignored)


def _row(line: int, values: dict[str, str], ignored: dict[str, list[int]]) -> ProgramRow:
    for name in ("name", "street", "city", "state", "intake"):
        if not values.get(name):
            raise CsvRowError(line, f"{name} is empty")
    try:
        lat, lon = float(values["latitude"]), float(values["longitude"])
    except ValueError:
        raise CsvRowError(line, "latitude and longitude must be numbers") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CsvRowError(line, "latitude/longitude out of range")
    program_id = None
    if values.get("program_id"):
        try:
            program_id = UUID(values["program_id"])
        except ValueError:
            raise CsvRowError(line, "program_id is not a UUID") from None
    place = ", ".join(part for part in (values["city"], " ".join(filter(None, (values["state"], values.get("zip"))))))
    row = ProgramRow(
        line=line,
        name=values["name"],
        address=f"{values['street']}, {place}",
        lat=lat,
        lon=lon,
        intake_phone=values["intake"],
        program_id=program_id,
        zone=values.get("zone") or None,
    )
    for code in _SPLIT.split(values["services"].upper()):
        if not code:
            continue
        mapped = SERVICE_CODES.get(code)
        if mapped is None:
            ignored.setdefault(code, []).append(line)
            continue
        target: list[str] = getattr(row, mapped[0])
        if mapped[1] not in target:
            target.append(mapped[1])
    for language in _SPLIT.split(values.get("languages", "").lower()):
        if language and language not in row.languages:
            row.languages.append(language)
    if "en" not in row.languages:  # a listed program takes English; the codes add the others
        row.languages.insert(0, "en")
    if not row.levels_of_care:
        raise CsvRowError(line, "no level of care among the services (e.g. ORT, OIT, RS, HID, OTP)")
    row.hours = read_hours(line, values.get("hours", ""))
    return row


def read_hours(line: int, text: str) -> list[dict[str, str]]:
    """``mon-fri 08:00-17:00; sat 09:00-12:00`` or ``24/7`` as weekly windows; empty text: none."""
    text = text.strip()
    if not text:
        return []
    if text == "24/7":
        return [{"weekday": day, "opens": "00:00", "closes": "24:00"} for day in WEEKDAYS]
    windows = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = _HOURS.match(part)
        if not match or match["first"].lower() not in _DAY or (match["last"] or "mon").lower() not in _DAY:
            raise CsvRowError(line, f"hours {part!r}: write e.g. 'mon-fri 08:00-17:00; sat 09:00-12:00'")
        first = WEEKDAYS.index(_DAY[match["first"].lower()])
        last = WEEKDAYS.index(_DAY[match["last"].lower()]) if match["last"] else first
        if last < first:
            raise CsvRowError(line, f"hours {part!r}: days run monday to sunday")
        for index in range(first, last + 1):
            windows.append({"weekday": WEEKDAYS[index], "opens": match["opens"], "closes": match["closes"]})
    return windows
