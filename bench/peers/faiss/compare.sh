#!/usr/bin/env bash
# Times reelrank and FAISS on one data set in one run, the engines taking
# turns (reelrank, FAISS, reelrank again, so drift of the machine shows as a
# difference between reelrank's two passes), and prints the comparison.
#
#   bench/peers/faiss/compare.sh PREFIX OUTDIR
#
# PREFIX names the TEXMEX files PREFIX.base.fvecs, PREFIX.query.fvecs and
# PREFIX.gt.ivecs (../shared/datasets/gen_reels.py makes them). OUTDIR gets
# faiss.jsonl, reelrank.jsonl, the FAISS indexes (reused by later runs of
# the same factory) and the reelrank index. Settings, from the environment:
#
#   FAISS_PEER  the harness binary (build.sh makes it)   default /work/faissw/faiss_peer
#   REELRANK    the reelrank binary                      default .bin/reelrank
#   K           results per query                         default 1000
#   METRIC      ip or l2                                  default ip
#   QUERIES     queries used (0: all)                     default 0
#   RR_NPROBE   reelrank's nprobe sweep                   default 128,256,384,512,640,768,1024
#   RR_FLAGS    more reelrank flags (none: its defaults)  default empty
#   FAISS       FAISS configurations, ';'-separated, each FACTORY:NPROBES:KFACTORS
#               default IVF1024,PQ64x4fs,RFlat:192,256,384,512:4,8;IVF2048,PQ64x4fs,RFlat:384,512,768,1024:4,8,16;IVF4096,PQ64x4fs,RFlat:768,1024,1536,2048:8,16
#
# Both engines: single-thread QPS one query per call after 200 warm-up
# queries, p50/p99 of those calls, batch QPS with every query in one call
# on all cores, recall@K against the ground truth, bytes a vector of the
# index as it serialises. table.sh turns the two files into Markdown.
set -euo pipefail
if [ $# -ne 2 ]; then
	sed -n '2,28p' "$0" >&2
	exit 2
fi
prefix=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
FAISS_PEER=${FAISS_PEER:-/work/faissw/faiss_peer}
REELRANK=${REELRANK:-$root/.bin/reelrank}
K=${K:-1000}
METRIC=${METRIC:-ip}
QUERIES=${QUERIES:-0}
RR_NPROBE=${RR_NPROBE:-128,256,384,512,640,768,1024}
RR_FLAGS=${RR_FLAGS:-}
FAISS=${FAISS:-"IVF1024,PQ64x4fs,RFlat:192,256,384,512:4,8;IVF2048,PQ64x4fs,RFlat:384,512,768,1024:4,8,16;IVF4096,PQ64x4fs,RFlat:768,1024,1536,2048:8,16"}
mkdir -p "$out"
[ -x "$FAISS_PEER" ] || { echo "no FAISS harness at $FAISS_PEER: run bench/peers/faiss/build.sh" >&2; exit 1; }
[ -x "$REELRANK" ] || { echo "no reelrank binary at $REELRANK: go build -o $REELRANK ./cmd/reelrank" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1
# Debian's OpenBLAS knows Zen 5 by no name of its own; its AVX-512 path is SkylakeX's.
if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}; fi

data=(--query "$prefix.query.fvecs" --gt "$prefix.gt.ivecs")
rridx="$out/reelrank$(echo "$RR_FLAGS" | tr -c 'A-Za-z0-9' '_').idx"

reelrank_pass() {
	local src=(--base "$prefix.base.fvecs" --save "$rridx")
	[ -f "$rridx" ] && src=(--index "$rridx")
	# shellcheck disable=SC2086
	"$REELRANK" bench ann "${src[@]}" "${data[@]}" --metric "$METRIC" --k "$K" --queries "$QUERIES" \
		--nprobe "$RR_NPROBE" --stages --json $RR_FLAGS | jq -c --arg pass "$1" '. + {engine: "reelrank", pass: $pass}' >>"$out/reelrank.jsonl"
}

echo "== $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" >&2
: >"$out/reelrank.jsonl"
: >"$out/faiss.jsonl"
echo "reelrank, first pass" >&2
reelrank_pass 1
IFS=';' read -ra cfgs <<<"$FAISS"
for c in "${cfgs[@]}"; do
	IFS=':' read -r factory nprobes kfactors <<<"$c"
	echo "FAISS $factory" >&2
	"$FAISS_PEER" --base "$prefix.base.fvecs" "${data[@]}" --metric "$METRIC" --factory "$factory" --k "$K" \
		--queries "$QUERIES" --nprobe "$nprobes" --kfactor "$kfactors" --threads "$(nproc)" \
		--index "$out/faiss_$(echo "$factory" | tr -c 'A-Za-z0-9' '_').index" >>"$out/faiss.jsonl"
done
echo "reelrank, second pass" >&2
reelrank_pass 2
"$here/table.sh" "$out"
