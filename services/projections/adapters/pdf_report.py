"""The crisis documentation as a PDF (fpdf2, its built-in Helvetica: nothing fetched, nothing embedded)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from fpdf import FPDF

from services.projections.adapters.record_layout import document_sections, fmt_time
from services.projections.domain.documentation import Documentation

LABEL_WIDTH = 55.0
"""Millimetres for a row's label; a longer label gets a line of its own above its value."""


def _latin1(text: str) -> str:
    """The core fonts cover Latin-1 only: other characters become '?' rather than failing the export."""
    return text.replace("—", "-").replace("–", "-").encode("latin-1", "replace").decode("latin-1")


def _row(pdf: FPDF, label: str, value: str) -> None:
    pdf.set_font("Helvetica", "B", 9)
    if pdf.get_string_width(label) > LABEL_WIDTH - 2:
        pdf.multi_cell(0, 5, label, new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(pdf.l_margin + LABEL_WIDTH)
    else:
        pdf.cell(LABEL_WIDTH, 5, label)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, value, new_x="LMARGIN", new_y="NEXT")


def documentation_pdf(doc: Documentation, title: str, generated_at: datetime, zone: tzinfo = UTC) -> bytes:
    """Every section of the documentation (``document_sections``), times in ``zone``, as an A4 PDF."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(title))
    pdf.set_creator("crisis-dispatch projections")
    pdf.set_creation_date(generated_at)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 8, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0,
        5,
        _latin1(f"Generated {fmt_time(generated_at, zone)}. Confidential: 42 CFR Part 2 protected record."),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if doc.gaps:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 7, _latin1(f"Documentation gaps ({len(doc.gaps)})"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for gap in doc.gaps:
            pdf.multi_cell(0, 5, _latin1(f"- {gap.label} ({gap.section})"), new_x="LMARGIN", new_y="NEXT")
    for heading, rows in document_sections(doc, zone):
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 7, _latin1(heading), new_x="LMARGIN", new_y="NEXT")
        for label, value in rows:
            _row(pdf, _latin1(label), _latin1(value))
    return bytes(pdf.output())
