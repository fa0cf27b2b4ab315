"""The README's Python examples run as written (in order, in one namespace), and so do those of
the docs/ pages it links (each page in a copy of the README's namespace)."""

import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
PAGES = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", open(path).read(), flags=re.S)


def run_blocks(blocks, namespace, name):
    for block in blocks:
        exec(compile(block, name, "exec"), namespace)


@pytest.mark.skipif(not os.path.exists(README), reason="run from a checkout (the README is not installed)")
def test_readme_python_blocks_run():
    blocks = python_blocks(README)
    assert len(blocks) >= 3
    run_blocks(blocks, {}, "README.md")


@pytest.mark.skipif(not os.path.exists(README), reason="run from a checkout (the docs are not installed)")
def test_every_page_the_readme_links_exists_and_its_python_blocks_run():
    text = open(README).read()
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", text))
    assert linked and all(os.path.exists(os.path.join(ROOT, page)) for page in linked), linked
    namespace = {}
    run_blocks(python_blocks(README), namespace, "README.md")
    for page in PAGES:
        run_blocks(python_blocks(page), dict(namespace), os.path.relpath(page, ROOT))
