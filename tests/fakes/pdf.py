"""A real one-page PDF for carrier fakes' labels (pypdf reads and merges it, as it does a
carrier's)."""

import io

from pypdf import PdfWriter


def label_pdf(text: str = "label") -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=288, height=432)  # 4 × 6 inches, a label printer's page
    writer.add_metadata({"/Title": text})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()
