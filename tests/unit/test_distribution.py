"""kesu installs one top-level import package, so it collides with no other distribution."""


def test_the_distribution_installs_one_top_level_name():
    from importlib import metadata

    names = metadata.distribution("kesu").read_text("top_level.txt")
    assert names is not None and names.split() == ["kesu"]
    owned = sorted(n for n, dists in metadata.packages_distributions().items() if "kesu" in dists)
    assert owned == ["kesu"]
