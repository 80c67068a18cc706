"""Per-file times of the last test-suite run, from the JUnit report pytest writes (pyproject.toml).

Each notebook is one file whose code cells are its tests, so a notebook's CI time is the sum of its
cells; the unit-test files are summed together. Times include waiting on a checkpoint's file lock, since
that is time the notebook's worker spends. Run after `python -m pytest` (or `bash .ci/run`):

    python benchmarks/suite_times.py                     # reads .cache/test-report.xml
    python benchmarks/suite_times.py path/to/report.xml

Prints one line per notebook, the unit tests' total, the failures, and the suite's wall time.
"""
import argparse
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", type=Path, default=Path(".cache/test-report.xml"))
    args = parser.parse_args()
    if not args.report.is_file():
        raise SystemExit(f"error: {args.report} not found; run the test suite first (python -m pytest)")
    suite = ET.parse(args.report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    seconds, failed, units = defaultdict(float), [], 0.0
    for case in suite.iter("testcase"):
        name = case.get("classname", "")  # nbval's cells: "notebooks.NN_name.ipynb"
        if name.endswith(".ipynb"):
            seconds[name.removeprefix("notebooks.")] += float(case.get("time", 0))
        else:
            units += float(case.get("time", 0))
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    for name in sorted(seconds):
        print(f"{name:<40} {seconds[name] / 60:5.1f} min")
    print(f"{'unit tests (all files)':<40} {units / 60:5.1f} min")
    print(f"failed: {len(failed)}" + "".join(f"\n  {case}" for case in failed))
    print(f"tests: {suite.get('tests')}, wall time: {float(suite.get('time')) / 60:.1f} min on "
          f"{suite.get('hostname', 'this machine')}")


if __name__ == "__main__":
    main()
