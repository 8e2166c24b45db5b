"""Regenerate cards/valuesets/*.json from the rules in cards/valuesets.toml.

    python scripts/build-valuesets.py           # write the expansions
    python scripts/build-valuesets.py --check   # exit 1 if any file would change

Needs simple-icd-10-cm (the `test` extra) and the SNOMED CT GPS file that
scripts/fetch-terminology.sh fetches. Review the diff of every expansion before committing:
each code that enters a value set is a clinical decision.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds.fhir.expand import expand, read_rules, render  # noqa: E402

GPS = Path(os.environ.get(
    "CDS_SNOMED_GPS", ROOT / ".cache/terminology/package/ValueSet-snomed-intl-gps.json"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report differences, write none")
    args = parser.parse_args()
    out = ROOT / "cards" / "valuesets"
    out.mkdir(exist_ok=True)
    rules = read_rules(ROOT / "cards" / "valuesets.toml")
    changed = 0
    for vs_id, rule in rules.items():
        path = out / f"{vs_id}.json"
        text = render(expand(vs_id, rule, GPS))
        before = path.read_text() if path.exists() else ""
        if text != before:
            changed += 1
            sys.stdout.writelines(difflib.unified_diff(
                before.splitlines(True), text.splitlines(True), str(path), "expanded", n=0))
            if not args.check:
                path.write_text(text)
    stale = [p for p in out.glob("*.json") if p.stem not in rules]
    for path in stale:
        changed += 1
        print(f"{path}: no rule defines it any more" + ("" if args.check else " (removed)"))
        if not args.check:
            path.unlink()
    print(f"{len(rules)} value sets, {changed} changed")
    return 1 if changed and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
