"""Example pipeline stage in Python: keeps only the OCR lines worth keeping.

Put it after the OCR stage of a pipeline (see deploy/examples/video-ocr.toml):

    [[pipeline]]
    name = "ocr-filtered"
    stages = ["decode", "ocr", "filter"]

It receives the OCR stage's records in place from its ring: one Result per
frame (a 16-byte header, then a JSON object with "lines") and the End. It
drops lines below --min-score (default 0.8) or shorter than --min-chars
(default 2) and passes the End on. As the last stage, its replies go to the
server; the pipeline protocol is described in proto/src/pipeline/mod.rs.
"""

import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from citadel_plugin import Reply, serve  # noqa: E402

RESULT, END, VERSION = 3, 4, 1
RESULT_HEADER = struct.Struct("<BBBBIq")  # type, version, 0, 0, frame index, pts_ms


def make_handler(min_score, min_chars):
    def handle(req):
        payload = bytes(req.payload)
        if len(payload) < 2 or payload[1] != VERSION:
            return Reply.error(1, b"filter: not a pipeline record")
        if payload[0] == END:
            return payload
        if payload[0] != RESULT or len(payload) < RESULT_HEADER.size:
            return Reply.error(1, b"filter: expected OCR results")
        result = json.loads(payload[RESULT_HEADER.size:])
        result["lines"] = [
            line
            for line in result.get("lines", [])
            if line.get("score", 0) >= min_score and len(line.get("text", "")) >= min_chars
        ]
        result["filtered_by"] = "ocr_filter.py"
        body = json.dumps(result, separators=(",", ":")).encode()
        return payload[: RESULT_HEADER.size] + body

    return handle


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-score", type=float, default=0.8)
    parser.add_argument("--min-chars", type=int, default=2)
    args = parser.parse_args()
    return serve(make_handler(args.min_score, args.min_chars))


if __name__ == "__main__":
    sys.exit(main())
