#!/usr/bin/env python3
"""The README's "C library" and "Python" sections quote code that CI compiles and runs:
every ```c block there is a stretch of one of examples/*.c (with its first four spaces of
indentation taken off), and every ```python block is the block of python/README.md that
python/tests/test_readme.py runs. Exits 1 naming the block that is not."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def section(text, title):
    start = text.index("## " + title + "\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def dedent4(text):
    return "\n".join(line[4:] if line.startswith("    ") else line for line in text.split("\n"))


def main():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = {p.name: dedent4(p.read_text(encoding="utf-8"))
                for p in sorted((ROOT / "examples").glob("*.c"))}
    tested = re.findall(r"```python\n(.*?)```", (ROOT / "python" / "README.md").read_text(
        encoding="utf-8"), re.S)
    bad = 0
    c_blocks = re.findall(r"```c\n(.*?)```", section(readme, "C library"), re.S)
    py_blocks = re.findall(r"```python\n(.*?)```", section(readme, "Python"), re.S)
    if not c_blocks or not py_blocks:
        print("README.md: the C library and Python sections must each quote code")
        return 1
    for i, block in enumerate(c_blocks, 1):
        if not any(block in text for text in examples.values()):
            print(f"README.md, C library, block {i}: not a stretch of any examples/*.c:\n{block}")
            bad += 1
    for i, block in enumerate(py_blocks, 1):
        if not tested or block != tested[0]:
            print(f"README.md, Python, block {i}: not python/README.md's tested block")
            bad += 1
    print(f"README snippets: {len(c_blocks)} C, {len(py_blocks)} Python, {bad} not from "
          "the code CI runs")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
