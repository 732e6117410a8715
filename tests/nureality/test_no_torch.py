"""The study platform runs without torch: importing every nureality module leaves it unloaded."""

import subprocess
import sys


def test_nureality_imports_no_torch():
    code = ("import sys, importlib\n"
            "for m in ('scenarios', 'kinematics', 'pedestrian', 'analysis', 'design', 'store', 'server'):\n"
            "    importlib.import_module('discern.nureality.' + m)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
