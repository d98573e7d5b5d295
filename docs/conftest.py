"""pytest runs the doctests of docs/*.md; these helper scripts are not doctest modules (the
griffe extension needs the docs extra, which the test environment does not install)."""

collect_ignore = ["griffe_doctests.py"]
