"""claude-top: a live terminal monitor for Claude Code's OpenTelemetry."""

import multiprocessing as _mp
import signal as _signal

__version__ = "0.1.0"

if getattr(_mp.current_process(), "_inheriting", False):
    # A decode worker being spawned imports this package first (its initializer repeats it
    # once started): Ctrl-C reaches the whole process group, and claude-top, which handles it,
    # stops its workers; they must not each print a KeyboardInterrupt traceback.
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
