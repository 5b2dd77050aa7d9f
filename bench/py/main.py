"""The Python side of the peer benchmark (bench/run.sh drives it):

  main.py spec   WORKDIR    write WORKDIR/spec.json, the rules and calls every engine gets
  main.py seeds  WORKDIR    time the two seed engines -> WORKDIR/python.json
  main.py mcp    WORKDIR    time FastMCP with and without each middleware -> WORKDIR/python-mcp.json
  main.py features REPO  check that bench/peers builds Portcullis as the main workspace does
  main.py report WORKDIR BENCHMARKS.md [COMMAND]
                            print the tables and replace the marked section of BENCHMARKS.md
"""

import json
import sys
import warnings
from pathlib import Path

# authlib (a fastmcp dependency) warns about its own deprecations on import, and its
# `deprecate` module turns its warnings back on ("always") when imported: import it first.
try:
    import authlib.deprecate  # noqa: F401
except ImportError:
    pass
warnings.filterwarnings("ignore")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, work = argv[1], Path(argv[2])
    import spec

    if cmd == "features":
        import features

        features.check(work)
    elif cmd == "spec":
        spec.write(work)
    elif cmd == "seeds":
        import seeds

        rows = seeds.run(spec.load(work))
        (work / "python.json").write_text(json.dumps(rows, indent=1))
    elif cmd == "mcp":
        import fastmcp_calls

        out = fastmcp_calls.run(spec.load(work))
        (work / "python-mcp.json").write_text(json.dumps(out, indent=1))
    elif cmd == "report":
        import report

        command = argv[4] if len(argv) > 4 else "bash bench/run.sh"
        print(report.write(work, Path(argv[3]), command))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
