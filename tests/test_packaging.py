"""setup.cfg installs every Python package of the repository.

``pip install .`` (not editable) copies only the packages setup.cfg lists; one
left out installs fine and fails at import (``tfq_plus.converters.ops`` did).
"""

import configparser
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    folders = {}
    for line in config["options"]["package_dir"].strip().splitlines():
        package, folder = (part.strip() for part in line.split("="))
        folders[package] = ROOT / folder
    found = set()
    for package, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder).parts
            found.add(".".join((package,) + relative))
    assert found, "no package found under setup.cfg's package_dir"
    assert found - listed == set(), f"packages missing from setup.cfg [options] packages: {sorted(found - listed)}"
    assert listed - found == set(), f"setup.cfg lists packages that do not exist: {sorted(listed - found)}"
