"""Score the committed members against the FER+ crowd and apply the shipped-model rules
(``experiments/members/RULES.md``), from the member records alone (no weights, no images).

    python experiments/ferplus_check.py [--members experiments/members] [--out experiments/results/ferplus_check]

For every member: its protocol, FER+ Valid and FER+ Test over the 7 classes (agreement with the crowd's
plurality, macro recall, neutral recall, "sad" false alarms; :func:`emotion.reporting.agreement.crowd_agreement`),
and FER2013 PublicTest and PrivateTest accuracy. The rules read PublicTest columns only:

* default: the highest mean of FER+ Valid agreement and macro recall (7-class members);
* fast: the same among vgg_tiny members;
* fer2013: the highest FER2013 PublicTest accuracy among members taught by FER2013 labels alone.

Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emotion.io import write_json  # noqa: E402
from emotion.reporting.members import MEMBERS_DIR, Member, list_members  # noqa: E402

TIE = 0.001  # RULES.md: a tie within 0.1 point goes to the smaller net


def default_score(m: Member) -> float:
    val = m.info["ferplus_crowd"]["val"]
    return (val["acc"] + val["macro_recall"]) / 2


def fer2013_val(m: Member) -> float:
    return m.info["ferplus_crowd"]["val"]["fer2013_acc"]


def choose(members: list[Member]) -> dict[str, str | None]:
    """The rules of RULES.md, on PublicTest figures alone."""
    seven = [m for m in members if len(m.info.get("class_names") or []) == 7]
    out: dict[str, str | None] = {"default": None, "fast": None, "fer2013": None}
    for role, pool in (("default", seven), ("fast", [m for m in seven if m.info["arch"] == "vgg_tiny"])):
        if pool:
            top = max(default_score(m) for m in pool)
            near = [m for m in pool if default_score(m) >= top - TIE]
            out[role] = min(near, key=lambda m: (m.info["params"], -default_score(m))).name
    labels_only = [m for m in seven if m.info["protocol"].startswith("FER2013 labels only")]
    if labels_only:
        out["fer2013"] = max(labels_only, key=fer2013_val).name
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=Path, default=MEMBERS_DIR)
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "ferplus_check")
    args = ap.parse_args()
    members = list_members(args.members)
    if not members:
        raise SystemExit(f"no member records under {args.members}")
    rows = []
    for m in members:
        c = m.info["ferplus_crowd"]
        rows.append({"member": m.name, "arch": m.info["arch"], "params": m.info["params"],
                     "protocol": m.info["protocol"] + ("; + a class bias fitted on PublicTest (its PublicTest "
                                                       "figures are optimistic)" if m.info.get("class_bias") else ""),
                     "tta": m.info["probs_tta"]["val"],
                     "rule_score_val": round(default_score(m), 4),
                     **{f"{s}_{k}": round(c[s][k], 4) for s in ("val", "test")
                        for k in ("acc", "macro_recall", "neutral_recall", "sad_false_alarms", "fer2013_acc")},
                     "test_recall": {k: round(v, 3) for k, v in c["test"]["recall"].items()}})
    chosen = choose(members)
    record = {"faces": {s: members[0].info["ferplus_crowd"][s]["faces"] for s in ("val", "test")},
              "members": rows, "chosen": chosen, "command": "python " + " ".join(sys.argv)}
    write_json(args.out.with_suffix(".json"), record)
    pct = lambda v: f"{100 * v:.2f} %"  # noqa: E731
    md = [f"Members against the FER+ crowd (7 classes; FER+ Valid = {record['faces']['val']} PublicTest faces, "
          f"FER+ Test = {record['faces']['test']} PrivateTest faces whose plurality is one of the 7). "
          f"Written by `{record['command']}`.", "",
          "Choosing reads the PublicTest columns only (experiments/members/RULES.md): "
          f"default → `{chosen['default']}`, fast → `{chosen['fast']}`, fer2013 → `{chosen['fer2013']}`.", "",
          "| member | protocol | rule score (val) | FER+ Valid acc / macro | FER+ Test acc | FER+ Test macro recall "
          "| neutral recall (test) | sad false alarms (test) | FER2013 PublicTest | FER2013 PrivateTest |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| `{r['member']}` ({r['arch']}) | {r['protocol']} | {pct(r['rule_score_val'])} | "
                  f"{pct(r['val_acc'])} / {r['val_macro_recall']:.3f} | {pct(r['test_acc'])} | "
                  f"{r['test_macro_recall']:.3f} | {r['test_neutral_recall']:.2f} | {pct(r['test_sad_false_alarms'])} "
                  f"| {pct(r['val_fer2013_acc'])} | {pct(r['test_fer2013_acc'])} |")
    md += ["", "Per-class recall on FER+ Test:", "",
           "| member | " + " | ".join(rows[0]["test_recall"]) + " |", "|---" * (len(rows[0]["test_recall"]) + 1) + "|"]
    md += [f"| `{r['member']}` | " + " | ".join(f"{v:.2f}" for v in r["test_recall"].values()) + " |" for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
