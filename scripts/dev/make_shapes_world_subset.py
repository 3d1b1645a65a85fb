#!/usr/bin/python3
"""make_shapes_world_subset.py: copies the first N images of the shapes-world dataset (with
their masks) into scripts/data/datasets/shapes-world/, with labels.csv and labels.json cut
to the same images, so the bundled demo has a labelled dataset of tinyclip-shapes' world.

    /usr/bin/python3 scripts/dev/make_shapes_world_subset.py ../shared/datasets/shapes-world \
        scripts/data/datasets/shapes-world 300

The images and masks are copied byte for byte; labels.json keeps the source's seed and
class lists and its formatting (json.dump with indent 1), its `images` cut to the copied
files; labels.csv keeps the header and the copied files' rows, in the same order, with
the source's RFC 4180 line ends (CR LF). The README and licence note are written by hand
(scripts/data/datasets/shapes-world/README.md).
Python's standard library only (developer tool, not part of the build).
"""
import csv
import io
import json
import os
import shutil
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, dst, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(os.path.join(src, "labels.json")) as f:
        labels = json.load(f)
    rows = labels["images"][:count]
    if len(rows) != count:
        sys.exit(f"{src}: only {len(labels['images'])} images")
    files = [r["file"] for r in rows]
    with open(os.path.join(src, "labels.csv"), newline="") as f:
        table = list(csv.reader(f))
    header, body = table[0], table[1:]
    by_file = {r[0]: r for r in body}
    for folder in ("images", "masks"):
        os.makedirs(os.path.join(dst, folder), exist_ok=True)
        for name in files:
            shutil.copyfile(os.path.join(src, folder, name), os.path.join(dst, folder, name))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for name in files:
        row = by_file[name]
        # the CSV and the JSON must say the same of every image
        if row[1:] != [next(r for r in rows if r["file"] == name)[k] for k in header[1:]]:
            sys.exit(f"{name}: labels.csv and labels.json disagree")
        writer.writerow(row)
    with open(os.path.join(dst, "labels.csv"), "w", newline="") as f:
        f.write(out.getvalue())
    labels["images"] = rows
    with open(os.path.join(dst, "labels.json"), "w") as f:
        json.dump(labels, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
