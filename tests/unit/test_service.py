from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from autoops.settings import SERVICE_CONFIG_VAR
from autoops.setup.service import InstallOptions, launcher_text, sudoers_text
from tests.conftest import needs


def test_the_launcher_pins_the_config_and_isolates_python(tmp_path: Path) -> None:
    python = Path("/opt/auto ops/bin/python")
    text = launcher_text(python, Path("/etc/autoops/service.yml"))
    assert text.startswith("#!/bin/sh\n")
    assert f"{SERVICE_CONFIG_VAR}=/etc/autoops/service.yml\nexport {SERVICE_CONFIG_VAR}\n" in text
    assert "exec '/opt/auto ops/bin/python' -I -m autoops \"$@\"" in text
    script = tmp_path / "launcher"
    script.write_text(text.replace("'/opt/auto ops/bin/python' -I -m autoops",
                                   "printf '%s\\n' \"$" + SERVICE_CONFIG_VAR + "\""))
    script.chmod(0o755)
    out = subprocess.run([str(script), "--x"], env={SERVICE_CONFIG_VAR: "/tmp/evil.yml"},
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "/etc/autoops/service.yml", "the caller's value never wins"


@needs(shutil.which("visudo") is not None, "visudo is not installed (Debian: sudo)")
def test_the_sudoers_entry_validates_and_allows_only_the_launcher(tmp_path: Path) -> None:
    text = sudoers_text(Path("/usr/local/bin/autoops"), "autoops", "autoops-operators",
                        Path("/etc/sudoers.d/autoops"))
    drop_in = tmp_path / "autoops"
    drop_in.write_text(text)
    check = subprocess.run(["visudo", "-c", "-q", "-f", str(drop_in)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stderr
    rules = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert rules[1].endswith("env_reset, !setenv")
    assert rules[2].startswith("%autoops-operators ALL=(autoops) NOPASSWD: AUTOOPS_")
    assert "ALL\n" not in text.split("NOPASSWD:")[1]


def test_install_options_carry_the_metrics_dir_into_the_config(tmp_path: Path) -> None:
    """Re-running `service install --metrics-dir` must not drop where metrics go."""
    opts = InstallOptions(project_dir=tmp_path, python=Path("/usr/bin/python3"),
                          metrics_dir=Path("/var/lib/node_exporter/textfile"))
    config = opts.service_config()
    assert config.metrics_dir == Path("/var/lib/node_exporter/textfile")
    assert config.to_dict()["metrics_dir"] == "/var/lib/node_exporter/textfile"
    assert InstallOptions(project_dir=tmp_path, python=Path("/usr/bin/python3")
                          ).service_config().metrics_dir is None
