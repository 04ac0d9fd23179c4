"""``python -m livequant`` and the ``livequant`` console script: the command line."""

import signal


def console() -> int:
    """Run the command line; a Ctrl-C while the modules load (scikit-learn and numba take a moment) exits 130.

    That Ctrl-C is held until the modules have loaded: raised inside an import, Python may swallow it (printing
    a traceback) or turn it into another error. Once the command is done, a late Ctrl-C is ignored: there is
    nothing left to stop, and Python would print a traceback from wherever the interpreter is on its way out.
    """
    caught = []
    holding = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if holding:
        signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        from livequant.cli import main

        if holding:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        return 130 if caught else main()
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    raise SystemExit(console())
