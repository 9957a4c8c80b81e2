"""Run FEFF10 (the feff10-rs wheel) on ``feff.inp`` in the current directory.

Started by the ``feff10`` engine as ``python -m mlxas.feff.feff10_driver --stages ...``
in its own process group, so that a timeout kills it and the FEFF10 workers it starts.
FEFF10's own messages go to stdout; an error raised by the wheel is printed as one line
``feff10 error: <kind>: <message>`` for the log checks.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlxas.feff.feff10_driver")
    parser.add_argument("--stages", required=True, help="comma-separated FEFF10 modules")
    args = parser.parse_args(argv)

    import feff10

    try:
        inp = feff10.FeffInput.from_file_strict("feff.inp")
        feff10.validate(inp)
        stages = [feff10.Stage.from_name(s.strip().lower()) for s in args.stages.split(",")]
        result = feff10.FeffPipeline(feff10.FeffConfig(".", inp, stages=stages)).run()
    except feff10.FeffError as err:
        print(f"feff10 error: {type(err).__name__}: {err}", flush=True)
        return 1
    for stage in result.stages:
        print(f"feff10 stage {stage.stage.executable_name}: {stage.duration_secs:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
