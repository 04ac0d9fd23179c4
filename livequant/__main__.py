"""``python -m livequant``: the command line."""

try:  # importing scikit-learn and numba takes a moment; a Ctrl-C then is no error
    from livequant.cli import main
except KeyboardInterrupt:
    raise SystemExit(130) from None

raise SystemExit(main())
