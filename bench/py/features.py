"""Checks that bench/peers builds Portcullis with exactly the dependency features the
`portcullis` crate gets in the main workspace. Cargo unifies the features of packages built
together, so a dependency of the bench (e.g. cedar-policy turning on serde_json's
`preserve_order`) could otherwise change the code that is timed; bench/run.sh runs this before
timing anything."""

import subprocess
import sys


def features(*args):
    out = subprocess.run(
        ["cargo", "tree", "--offline", "--locked", "-e", "features,normal", "--prefix", "none",
         "-f", "{p} {f}", *args],
        capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        # "<name> <version> [<features>] [(*)]"; the feature nodes ("<name> feature ...") repeat them.
        if len(parts) < 2 or parts[1] == "feature":
            continue
        feats = parts[2] if len(parts) > 2 and not parts[2].startswith("(") else ""
        found.setdefault(f"{parts[0]} {parts[1]}", set()).update(f for f in feats.split(",") if f)
    return found


def check(root):
    main = features("--manifest-path", f"{root}/Cargo.toml", "-p", "portcullis")
    bench = features("--manifest-path", f"{root}/bench/peers/Cargo.toml", "-p", "portcullis-peers")
    bad = []
    for crate, feats in sorted(main.items()):
        if crate not in bench:
            bad.append(f"{crate}: missing from the bench build (a different version?)")
        elif bench[crate] != feats:
            bad.append(f"{crate}: features {sorted(feats)} in the portcullis build, "
                       f"{sorted(bench[crate])} in the bench")
    if bad:
        sys.exit("bench/peers would time a different Portcullis build:\n  " + "\n  ".join(bad))
    print(f"features: the bench builds Portcullis' {len(main)} crates as the main workspace does",
          file=sys.stderr)
