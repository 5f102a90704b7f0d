"""kesu installs one top-level import package, so it collides with no other distribution."""


def test_the_distribution_installs_one_top_level_name():
    from importlib import metadata

    names = metadata.distribution("kesu").read_text("top_level.txt")
    assert names is not None and names.split() == ["kesu"]
    owned = sorted(n for n, dists in metadata.packages_distributions().items() if "kesu" in dists)
    assert owned == ["kesu"]


def test_the_version_is_the_one_pyproject_declares():
    """One definition (pyproject.toml), read by `kesu.version()` for the ledger, the report
    manifests and the staging fingerprint: an installed kesu reports the version it is."""
    import tomllib
    from pathlib import Path

    import kesu

    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    assert kesu.version() == tomllib.loads(pyproject.read_text())["project"]["version"]
