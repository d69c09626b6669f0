"""How well each planner reads descriptions: per planner, the share of descriptions whose plan
has the expected number of events, and per field (visual aside: its wording is free) the share of
events planned exactly as expected. With trained weights behind `llm` or `local` this measures
them on your own queries; on this repository's machine only `rules` can run (no model).

    python benchmarks/plan_quality.py [CASES.jsonl] [--planners rules,llm,local] [--config FILE]

CASES.jsonl: one description a line, with the plan it should give:
    {"description": "...", "events": [{"visual": "...", "ocr": "", "speech": "", "objects": [], "colors": []}],
     "within_s": null}
Without a file, the table of tests/test_planner.py (22 descriptions in AIC's style). The
planners run as [plan] configures them (url, model, local_model), each alone, no fallback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evr.search.planner import PlanError, configured, make_plan  # noqa: E402
from evr.ui.config import load_config  # noqa: E402

FIELDS = ("ocr", "speech", "objects", "colors")


def cases(path: Path | None) -> list[dict]:
    if path is not None:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    from tests.test_planner import CASES, expected_event

    return [{"description": d, "events": [expected_event(e) for e in ev], "within_s": w} for d, ev, w in CASES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="?", type=Path)
    parser.add_argument("--planners", default="rules,llm,local")
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    settings = load_config(args.config).plan
    table = cases(args.cases)
    print(f"{len(table)} descriptions\n")
    print(
        f"{'planner':<8} {'planned':>8} {'events':>8} "
        + " ".join(f"{f:>8}" for f in FIELDS)
        + f" {'within':>8} {'s/plan':>8}"
    )
    for name in args.planners.split(","):
        alone = replace(settings, planners=[name])
        if not configured(name, alone):
            print(f"{name:<8} not set up ([plan] {'url' if name == 'llm' else 'local_model'})")
            continue
        planned = same_count = within = 0
        fields = dict.fromkeys(FIELDS, 0)
        events = 0
        started = time.perf_counter()
        for case in table:
            try:
                plan = make_plan(case["description"], alone).to_json()
            except (PlanError, ValueError) as exc:
                print(f"  {name}: {case['description'][:50]}...: {exc}", file=sys.stderr)
                continue
            planned += 1
            within += plan["within_s"] == case.get("within_s")
            if len(plan["events"]) == len(case["events"]):
                same_count += 1
                for got, want in zip(plan["events"], case["events"]):
                    events += 1
                    for f in FIELDS:
                        fields[f] += (
                            sorted(got[f]) == sorted(want[f]) if isinstance(want[f], list) else got[f] == want[f]
                        )
        seconds = (time.perf_counter() - started) / max(1, len(table))
        share = lambda n, of: f"{100 * n / of:7.0f}%" if of else "       -"  # noqa: E731
        print(
            f"{name:<8} {share(planned, len(table))} {share(same_count, len(table))} "
            + " ".join(share(fields[f], events) for f in FIELDS)
            + f" {share(within, len(table))} {seconds:8.3f}"
        )


if __name__ == "__main__":
    main()
