"""python/README.md's usage example runs as written (from the checkout root's point of view:
experiments/ is reachable, $ANAMO_DATA names the data)."""
import os
import re

from conftest import ROOT


def test_readme_example_runs(data, tmp_path, monkeypatch):
    text = (ROOT / "python" / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "python/README.md has no python block"
    # run where its checkpoint may be written, with the checkout's experiments/ beside it
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANAMO_DATA", str(data))
    exec(compile(blocks[0], "python/README.md", "exec"), {"__name__": "readme"})
    assert os.path.isfile(tmp_path / "mnist-joint.safetensors")
