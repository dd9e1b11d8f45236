"""splice.py DOC SECTION: put SECTION's text into DOC between the lines
`<!-- bench/run begin -->` and `<!-- bench/run end -->`, replacing what was there. Without
the markers, the section goes in before DOC's first `## ` heading (after the intro)."""

import sys

BEGIN, END = "<!-- bench/run begin -->", "<!-- bench/run end -->"
doc_path, section_path = sys.argv[1], sys.argv[2]
doc = open(doc_path, encoding="utf-8").read()
section = open(section_path, encoding="utf-8").read().strip("\n")
block = f"{BEGIN}\n{section}\n{END}"
if BEGIN in doc and END in doc and doc.index(BEGIN) < doc.index(END):
    head, rest = doc.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    doc = head + block + tail
else:
    at = doc.find("\n## ")
    if at < 0:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    else:
        doc = doc[: at + 1] + block + "\n\n" + doc[at + 1 :]
with open(doc_path, "w", encoding="utf-8") as f:
    f.write(doc)
