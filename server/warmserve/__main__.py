"""`python -m warmserve` is the same as the `warmserve` console script."""

from warmserve.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
