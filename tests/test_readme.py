"""The README's Python snippets run as written, and its links point at files.

The snippets form one session (the quick start defines ``data``, ``model``...; the
later ones continue it), so they run in order in one fresh interpreter, in a
temporary folder where their ``out/`` files land.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_snippets(text: str):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_the_readme_has_its_snippets():
    snippets = python_snippets((ROOT / "README.md").read_text())
    # quick start, training recipes, convert / check
    assert len(snippets) >= 3
    assert "write_c_array" in snippets[0] and "convert_with_reference" in snippets[0]


def test_readme_python_snippets_run_in_order(tmp_path):
    snippets = python_snippets((ROOT / "README.md").read_text())
    script = tmp_path / "readme_session.py"
    script.write_text("\n\n".join(snippets))
    env = dict(os.environ, TFQ_PLUS_TF_LOGS="hide", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-4000:]
    out = tmp_path / "out"
    for produced in ("quickstart/my_bnn.h", "quickstart/my_bnn.cc", "quickstart/my_bnn_op_resolver.h",
                     "student.h5", "inq.tflite", "inq_report.png"):
        assert (out / produced).is_file(), produced
    # verify printed its report for both models (it raises on any difference)
    assert result.stdout.count("each TFQP op on its own input") == 2


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_relative_links_point_at_files(document):
    text = document.read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    missing = [t for t in local if not (document.parent / t).exists()]
    assert not missing, f"{document.name} links to missing files: {missing}"
