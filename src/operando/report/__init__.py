"""operando.report: self-contained HTML reports of pipeline runs (a face, like the CLI).

>>> from operando.report import write_report  # doctest: +SKIP
>>> write_report("runs/demo", "runs/demo/report.html")  # doctest: +SKIP
"""

from ._report import REPORT_SECTIONS as REPORT_SECTIONS
from ._report import Report as Report
from ._report import Section as Section
from ._report import build_report as build_report
from ._report import register_section as register_section
from ._report import render_html as render_html
from ._report import write_report as write_report
