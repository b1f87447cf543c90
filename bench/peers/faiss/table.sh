#!/usr/bin/env bash
# Prints, as Markdown, what compare.sh measured in OUTDIR: every row of both
# engines, then for each target recall the fastest single-thread
# configuration of each that reaches it, and the ratio.
#
#   bench/peers/faiss/table.sh OUTDIR [TARGETS]     TARGETS default 0.90,0.95
set -euo pipefail
out=$1
targets=${2:-0.90,0.95}
rr="$out/reelrank.jsonl" fa="$out/faiss.jsonl"

echo "| engine | configuration | recall@k | QPS 1 thread | p50 µs | p99 µs | QPS batch | bytes/vector | build s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
jq -r '"| FAISS \(.version) | \(.factory) nprobe \(.nprobe), refine ×\(.kfactor) | \(.recall*1000|round/1000) | \(.qps_1t|round) | \(.p50_us|round) | \(.p99_us|round) | \(.qps_batch|round) | \(.bytes_per_vector) | \(if .build_s < 0 then "" else (.build_s*10|round/10|tostring) end) |"' "$fa"
jq -r '"| reelrank (pass \(.pass)) | nprobe \(.nprobe), refine ×\(.refine) | \(.["recall@k"]*1000|round/1000) | \(.qps_1thread|round) | \(.p50_us|round) | \(.p99_us|round) | \(.qps_batch|round) | \(.bytes_per_vector*10|round/10) | \(if .build_s > 0 then (.build_s*10|round/10|tostring) else "" end) |"' "$rr"
echo
echo "| target recall | FAISS's fastest | QPS | p99 µs | reelrank pass 1 | QPS | p99 µs | ratio | reelrank pass 2 | QPS | p99 µs | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
IFS=',' read -ra ts <<<"$targets"
for t in "${ts[@]}"; do
	f=$(jq -s -c --argjson t "$t" '[.[] | select(.recall >= $t)] | max_by(.qps_1t) // empty' "$fa")
	line="| $t |"
	if [ -n "$f" ]; then
		line+=$(jq -r '" \(.factory) nprobe \(.nprobe) ×\(.kfactor) (\(.recall*1000|round/1000)) | \(.qps_1t|round) | \(.p99_us|round) |"' <<<"$f")
		fq=$(jq -r .qps_1t <<<"$f")
	else
		line+=" none reaches it | | |"
		fq=""
	fi
	for pass in 1 2; do
		r=$(jq -s -c --argjson t "$t" --arg p "$pass" '[.[] | select(.pass == $p and .["recall@k"] >= $t)] | max_by(.qps_1thread) // empty' "$rr")
		if [ -n "$r" ]; then
			line+=$(jq -r '" nprobe \(.nprobe) ×\(.refine) (\(.["recall@k"]*1000|round/1000)) | \(.qps_1thread|round) | \(.p99_us|round) |"' <<<"$r")
			if [ -n "$fq" ]; then
				line+=$(jq -r --argjson fq "$fq" '" \(.qps_1thread / $fq * 100 | round / 100)x |"' <<<"$r")
			else
				line+=" |"
			fi
		else
			line+=" none reaches it | | | |"
		fi
	done
	echo "$line"
done
