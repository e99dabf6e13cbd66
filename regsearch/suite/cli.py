"""The suite on the command line: progress lines, one-line errors and exit codes.

Exit status 0 when the suite finished, 2 on bad input (one line on stderr, nothing written),
1 when the recorder of a data set's sweep failed, 130 when interrupted (the same command then
resumes: finished data sets are not rerun).
"""

from __future__ import annotations

import sys

from regsearch.config import ConfigError, RegsearchConfig

__all__ = ["suite_job"]


def suite_job(cfg: RegsearchConfig, config_yaml: str) -> None:
    """Run the suite of ``cfg`` (``+experiment=suite``) as ``python -m regsearch`` does.

    Raises:
        SystemExit: 2 on bad input, 1 on a recorder failure, 130 when interrupted.
    """
    from regsearch.recorder import RecorderError
    from regsearch.suite.runner import run_suite

    try:
        run_suite(cfg, config_yaml)
    except ConfigError as err:
        print(f"regsearch: error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    except RecorderError as err:
        print(f"regsearch: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(
            "\nregsearch: suite interrupted; the stores and suite.json are consistent. "
            "Run the same command again to resume (finished data sets are not rerun).",
            file=sys.stderr,
        )
        sys.exit(130)
