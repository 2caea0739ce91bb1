"""The crisis documentation as a PDF (fpdf2, its built-in Helvetica: nothing fetched, nothing embedded)."""

from __future__ import annotations

from datetime import datetime

from fpdf import FPDF

from services.projections.adapters.record_layout import document_sections, fmt_time
from services.projections.domain.documentation import Documentation


def _latin1(text: str) -> str:
    """The core fonts cover Latin-1 only: other characters become '?' rather than failing the export."""
    return text.replace("—", "-").replace("–", "-").encode("latin-1", "replace").decode("latin-1")


def documentation_pdf(doc: Documentation, title: str, generated_at: datetime) -> bytes:
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
        _latin1(f"Generated {fmt_time(generated_at)}. Confidential: 42 CFR Part 2 protected record."),
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
    for heading, rows in document_sections(doc):
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 7, _latin1(heading), new_x="LMARGIN", new_y="NEXT")
        for label, value in rows:
            pdf.set_font("Helvetica", "B", 9)
            pdf.cell(55, 5, _latin1(label))
            pdf.set_font("Helvetica", "", 9)
            pdf.multi_cell(0, 5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
