"""``python -m livequant`` and the ``livequant`` console script: the command line."""

import signal


def console() -> int:
    """Run the command line; a Ctrl-C while the modules load (scikit-learn and numba take a moment) is no error.

    Once the command is done, a late Ctrl-C is ignored: there is nothing left to stop, and Python would
    print a traceback from wherever the interpreter is on its way out.
    """
    try:
        from livequant.cli import main

        return main()
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    raise SystemExit(console())
