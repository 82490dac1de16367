import subprocess
import sys


def test_cli_help_lists_program():
    out = subprocess.run([sys.executable, "-m", "evalkit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "evalkit" in out.stdout
