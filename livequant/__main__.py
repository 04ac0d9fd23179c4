"""``python -m livequant`` and the ``livequant`` console script: the command line."""


def console() -> int:
    """Run the command line; a Ctrl-C while the modules load (scikit-learn and numba take a moment) is no error."""
    try:
        from livequant.cli import main
    except KeyboardInterrupt:
        return 130
    return main()


if __name__ == "__main__":
    raise SystemExit(console())
