#!/usr/bin/env python3
"""Writes the PDF test data of the ingest module into tests/data/ingest/ (run once, output committed).

    pip install fpdf2==2.8.9 pypdf==7.1.1 reportlab==5.1.0 Pillow
    python3 tools/make_ingest_test_data.py            # writes tests/data/ingest/*.pdf
    python3 tools/make_ingest_test_data.py --bench D  # also writes D/bench.pdf (300 pages, not committed)

In the fpdf2 files every line of text is placed explicitly (no automatic wrapping), so the tests know
exactly where lines break, which word is hyphenated at a line end and which sentence is on which page.
justified_columns.pdf is laid out by reportlab instead, as a typesetter would: justified two-column
text, first-line indents, no space between paragraphs, paragraphs running on into the next column; each
paragraph N is marked "PnSTART ... PnEND." so that the tests can check the paragraphs found. The text files
(.txt, .md, .html) of tests/data/ingest/ are written by hand, except sample.txt (BOM, CRLF, form feeds),
which this script also writes because those bytes are easy to lose in an editor.
"""

import argparse
import datetime
import io
import os
import random

from fpdf import FPDF
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter
from reportlab.lib.enums import TA_JUSTIFY
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ingest")

LINE_MM = 4.8


def new_pdf(title=None):
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_creation_date(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    if title:
        pdf.set_title(title)
        pdf.set_author("Ingest Test Data")
    return pdf


def heading(pdf, y, text):
    pdf.set_font("Helvetica", "B", 16)
    pdf.text(20, y, text)
    pdf.set_font("Helvetica", "", 11)
    return y + 12


def lines(pdf, x, y, rows):
    """Places each row at (x, y), one line apart; an empty row is a paragraph gap."""
    pdf.set_font("Helvetica", "", 11)
    for row in rows:
        if row:
            pdf.text(x, y, row)
        y += LINE_MM
    return y


def footer(pdf, page, total):
    pdf.set_font("Helvetica", "I", 9)
    pdf.text(20, 285, f"Annual Harbour Report - Page {page} of {total}")


def make_report(path):
    """4 pages, metadata title, footers on every page, page 3 has nothing but its footer, and a
    rotated stamp in the margin of page 1 (as arXiv puts on its PDFs)."""
    pdf = new_pdf("Annual Harbour Report")
    pdf.add_page()
    y = heading(pdf, 25, "1 Introduction")
    y = lines(pdf, 20, y, [
        "The harbour authority publishes this report every year to share infor-",
        "mation with the residents of the town. The quick brown fox sleeps on",
        "page one. Dr. Smith reviewed the figures, e.g. the 3.14 percent growth",
        "in cargo volume, and found them sound.",
        "",
        "Ships from many countries visit the port. It is a well-known fact that",
        "the port never closes. The pilots know every rock, and their well-",
        "known skill keeps the channel safe. Tugboats assist the large",
        "vessels at every tide.",
    ])
    footer(pdf, 1, 4)
    with pdf.rotation(90, 10, 200):
        pdf.text(10, 200, "arXiv:2401.00001v1 [cs.CL] 1 Jan 2024")

    pdf.add_page()
    y = heading(pdf, 25, "2 Operations")
    y = lines(pdf, 20, y, [
        "The harbour lighthouse was built in 1887 and still guides ships today.",
        "Its lamp was electrified in 1921, long before the new quay was added",
        "to the eastern side of the basin.",
        "",
        "Services offered at the port:",
        "- Cargo handling for containers and bulk goods.",
        "- Passenger ferries to the islands.",
        "",
        "Pilots log their trips with two commands:",
    ])
    pdf.set_font("Courier", "", 10)
    for row in ["$ harbour-log start --pilot smith", "$ harbour-log stop"]:
        pdf.text(20, y, row)
        y += LINE_MM
    footer(pdf, 2, 4)

    pdf.add_page()
    footer(pdf, 3, 4)

    pdf.add_page()
    y = heading(pdf, 25, "3 Conclusion")
    y = lines(pdf, 20, y, [
        "Page four closes the report with a final remark about the caf\u00e9 on the",
        "pier. The authority thanks everyone who contributed to this report.",
    ])
    footer(pdf, 4, 4)
    pdf.output(path)


def make_no_title(path):
    pdf = new_pdf()
    pdf.add_page()
    y = heading(pdf, 25, "Quarterly Notes")
    lines(pdf, 20, y, [
        "These notes have no title in their metadata. The parser takes the",
        "first line of the first page as the title instead.",
    ])
    pdf.output(path)


LEFT = [
    "The left column describes the northern",
    "pier in detail. Its wooden deck was re-",
    "placed in 1990 with concrete slabs. The",
    "northern pier ends at a small beacon.",
    "",
    "Fishermen moor their boats along the",
    "inner side of the northern pier.",
]
RIGHT = [
    "The right column covers the southern",
    "breakwater instead. It shelters the",
    "basin from the winter storms that come",
    "from the open sea. The breakwater is",
    "two kilometres long.",
    "",
    "Walkers use its crest on calm days.",
]


def make_two_columns(path):
    pdf = new_pdf("Two Column Study")
    pdf.add_page()
    y = heading(pdf, 25, "Two Column Study")
    lines(pdf, 20, y, LEFT)
    lines(pdf, 110, y, RIGHT)
    pdf.output(path)


def make_justified_columns(path):
    rng = random.Random(1)
    words = ("the harbour ship cargo pilot tide quay ferry basin beacon storm crew deck port lighthouse "
             "channel vessel anchor wharf crane container island information international").split()

    def sentence():
        return " ".join(rng.choice(words) for _ in range(rng.randint(8, 20))).capitalize() + "."

    doc = BaseDocTemplate(path, pagesize=A4, title="Justified Columns", invariant=True)
    width, height = A4
    column = (width - 100) / 2
    doc.addPageTemplates([PageTemplate(id="two", frames=[
        Frame(40, 60, column, height - 120, id="left"),
        Frame(60 + column, 60, column, height - 120, id="right")])])
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], alignment=TA_JUSTIFY, firstLineIndent=14,
                          spaceBefore=0, spaceAfter=0, fontSize=10, leading=12)
    story = [Paragraph("Introduction", styles["Heading2"])]
    for p in range(30):
        text = " ".join(sentence() for _ in range(rng.randint(3, 7)))
        story.append(Paragraph(f"P{p}START {text} P{p}END.", body))
        if p % 10 == 9:
            story.append(Paragraph(f"Section {p // 10 + 2}", styles["Heading2"]))
    doc.build(story)


def make_image_only(path):
    img = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(img)
    for i in range(0, 300, 20):
        draw.line([(0, i), (400, 300 - i)], fill=(i % 256, 80, 160), width=3)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    buf.seek(0)
    pdf = new_pdf("Scanned Page")
    pdf.add_page()
    pdf.image(buf, x=20, y=20, w=170)
    pdf.output(path)


def make_encrypted(src, path):
    reader = PdfReader(src)
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with open(path, "wb") as f:
        writer.write(f)


def make_bench(path, pages=300):
    """A long flowing-text PDF for timing the parser (not committed)."""
    rng = random.Random(7)
    words = ("harbour ship cargo pilot tide quay ferry basin beacon storm crew deck port "
             "lighthouse channel vessel anchor wharf crane container island").split()
    pdf = new_pdf("Bench Document")
    pdf.set_font("Helvetica", "", 10)
    for p in range(pages):
        pdf.add_page()
        y = 20
        while y < 280:
            sentence = " ".join(rng.choice(words) for _ in range(rng.randint(6, 18)))
            pdf.set_xy(20, y)
            pdf.multi_cell(170, 5, (sentence.capitalize() + ". ") * 4)
            y = pdf.get_y() + 3
    pdf.output(path)


SAMPLE_TXT = (
    "\ufeffField Guide to Tide Pools\r\n"
    "\r\n"
    "Tide pools form where the sea leaves water behind at low tide.\r\n"
    "Anemones and crabs live in them.\r\n"
    "\f"
    "Page two describes the starfish. A starfish can regrow a lost arm.\r\n"
    "\r\n"
    "Visitors should not lift the rocks.\r\n"
    "\f"
    "The third page is short.\r\n"
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", help="folder for a 300-page bench.pdf (not committed)")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    out = lambda name: os.path.join(OUT, name)
    make_report(out("report.pdf"))
    make_no_title(out("no_title.pdf"))
    make_two_columns(out("two_columns.pdf"))
    make_justified_columns(out("justified_columns.pdf"))
    make_image_only(out("image_only.pdf"))
    make_encrypted(out("no_title.pdf"), out("encrypted.pdf"))
    with open(out("report.pdf"), "rb") as f:
        data = f.read()
    with open(out("truncated.pdf"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(out("corrupt.pdf"), "wb") as f:
        f.write(b"%PDF-1.7\n" + bytes(random.Random(3).randrange(256) for _ in range(2000)))
    with open(out("sample.txt"), "wb") as f:
        f.write(SAMPLE_TXT.encode("utf-8"))
    if args.bench:
        os.makedirs(args.bench, exist_ok=True)
        make_bench(os.path.join(args.bench, "bench.pdf"))


if __name__ == "__main__":
    main()
