"""Reading a treatment-program CSV (FindTreatment.gov columns and service codes) into the directory's vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.contract.events import LevelOfCare, Medication, Payer, Population, ProgramProfile
from services.intake_gateway.domain.program_csv import SERVICE_CODES, CsvRowError, read_program_csv

SAMPLE = Path(__file__).parents[2] / "deploy" / "demo" / "programs.csv"
HEADER = "name1,street1,city,state,zip,intake1,latitude,longitude,services,hours\n"


def test_the_demo_sample_reads_whole_and_maps_its_codes() -> None:
    parsed = read_program_csv(SAMPLE.read_text())
    assert 5 <= len(parsed.rows) <= 8
    clinic = parsed.rows[0]
    assert clinic.line == 2 and clinic.name.startswith("Bannock Street")
    assert clinic.address == "777 Bannock St, Denver, CO 80204"
    assert clinic.levels_of_care == ["OTP", "2.1", "1"]
    assert clinic.medications == ["methadone", "buprenorphine", "naltrexone"]
    assert clinic.payers == ["medicaid", "medicare", "sliding_fee"]
    assert clinic.populations == ["adults"] and clinic.languages == ["en", "es"]
    assert clinic.hours[0] == {"weekday": "monday", "opens": "06:00", "closes": "14:00"}
    assert clinic.hours[-1] == {"weekday": "saturday", "opens": "07:00", "closes": "11:00"}
    assert parsed.ignored_codes == {"DV": [8]}


def test_every_mapped_code_names_a_value_of_the_contract() -> None:
    vocabularies = {
        "levels_of_care": {v.value for v in LevelOfCare},
        "medications": {v.value for v in Medication},
        "payers": {v.value for v in Payer},
        "populations": {v.value for v in Population},
        "languages": set(ProgramProfile.model_fields["languages"].annotation.__args__[0].__args__),
    }
    for code, (field, value) in SERVICE_CODES.items():
        assert value in vocabularies[field], code


def test_unknown_codes_are_ignored_and_reported_with_their_lines() -> None:
    text = HEADER + (
        "A,1 Main St,Denver,CO,80202,(303) 555-0141,39.7,-104.9,ORT XYZ BU,\n"
        "B,2 Main St,Denver,CO,80202,(303) 555-0142,39.7,-104.9,OIT;xyz;CJ;QQ,\n"
    )
    parsed = read_program_csv(text)
    assert parsed.ignored_codes == {"XYZ": [2, 3], "QQ": [3]}
    assert parsed.rows[1].levels_of_care == ["2.1"] and parsed.rows[1].populations == ["criminal_justice"]


@pytest.mark.parametrize(
    ("row", "complaint"),
    [
        (",1 Main St,Denver,CO,80202,(303) 555-0141,39.7,-104.9,ORT,", "name is empty"),
        ("A,1 Main St,Denver,CO,80202,(303) 555-0141,north,-104.9,ORT,", "must be numbers"),
        ("A,1 Main St,Denver,CO,80202,(303) 555-0141,99,-104.9,ORT,", "out of range"),
        ("A,1 Main St,Denver,CO,80202,(303) 555-0141,39.7,-104.9,BU MD,", "no level of care"),
        ("A,1 Main St,Denver,CO,80202,(303) 555-0141,39.7,-104.9,ORT,mon-fri 9-5", "hours"),
        ("A,1 Main St,Denver,CO,80202,(303) 555-0141,39.7,-104.9,ORT", "cells"),
    ],
)
def test_a_bad_row_refuses_the_file_naming_its_line(row: str, complaint: str) -> None:
    good = "A,1 Main St,Denver,CO,80202,(303) 555-0141,39.7,-104.9,ORT,\n"
    with pytest.raises(CsvRowError) as refused:
        read_program_csv(HEADER + good + row + "\n")
    assert refused.value.line == 3 and complaint in refused.value.message


def test_a_file_without_the_required_columns_is_refused_at_its_header() -> None:
    with pytest.raises(CsvRowError) as refused:
        read_program_csv("name1,city\nA,Denver\n")
    assert refused.value.line == 1 and "intake" in refused.value.message


def test_round_the_clock_hours_are_seven_whole_days() -> None:
    parsed = read_program_csv(HEADER + "A,1 Main St,Denver,CO,80202,(303) 555-0141,39.7,-104.9,RD,24/7\n")
    assert len(parsed.rows[0].hours) == 7 and parsed.rows[0].hours[6]["closes"] == "24:00"
