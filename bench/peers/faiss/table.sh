#!/usr/bin/env bash
# Prints, as Markdown, what compare.sh measured in OUTDIR: every row of both
# engines, then for each target recall the fastest single-thread
# configuration of each that reaches it, and the ratio.
#
#   bench/peers/faiss/table.sh OUTDIR [TARGETS]     TARGETS default 0.90,0.95
#
# Both files hold `reelrank bench ann --json` rows (faiss_peer writes the
# same fields; rows of its first version, with recall/qps_1t/kfactor/nlist,
# are read too).
set -euo pipefail
out=$1
targets=${2:-0.90,0.95}
rr="$out/reelrank.jsonl" fa="$out/faiss.jsonl"
norm='{engine: (.engine // "reelrank"), name: (if .factory then "FAISS \(.version)" else "reelrank (pass \(.pass))" end),
  conf: (if .factory then "\(.factory) nprobe \(.nprobe), refine ×\(.refine // .kfactor)"
         else "\(.lists // "?") lists, nprobe \(.nprobe), refine ×\(.refine)" end),
  short: (if .factory then "\(.factory) nprobe \(.nprobe) ×\(.refine // .kfactor)" else "nprobe \(.nprobe) ×\(.refine)" end),
  pass: (.pass // ""), recall: (.["recall@k"] // .recall), qps: (.qps_1thread // .qps_1t), p50: .p50_us, p99: .p99_us,
  batch: .qps_batch, bytes: .bytes_per_vector, build: .build_s}'

echo "| engine | configuration | recall@k | QPS 1 thread | p50 µs | p99 µs | QPS batch | bytes/vector | build s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
cat "$fa" "$rr" | jq -r "$norm"' | "| \(.name) | \(.conf) | \(.recall*1000|round/1000) | \(.qps|round) | \(.p50|round) | \(.p99|round) | \(.batch|round) | \(.bytes*10|round/10) | \(if .build > 0 then (.build*10|round/10|tostring) else "" end) |"'
echo
echo "| target recall | FAISS's fastest | QPS | p99 µs | reelrank pass 1 | QPS | p99 µs | ratio | reelrank pass 2 | QPS | p99 µs | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
IFS=',' read -ra ts <<<"$targets"
for t in "${ts[@]}"; do
	best() { jq -s -c --argjson t "$t" --arg p "$2" "[.[] | $norm | select(.recall >= \$t and (\$p == \"\" or .pass == \$p))] | max_by(.qps) // empty" "$1"; }
	f=$(best "$fa" "")
	line="| $t |"
	fq=""
	if [ -n "$f" ]; then
		line+=$(jq -r '" \(.short) (\(.recall*1000|round/1000)) | \(.qps|round) | \(.p99|round) |"' <<<"$f")
		fq=$(jq -r .qps <<<"$f")
	else
		line+=" none reaches it | | |"
	fi
	for pass in 1 2; do
		r=$(best "$rr" "$pass")
		if [ -n "$r" ]; then
			line+=$(jq -r '" \(.short) (\(.recall*1000|round/1000)) | \(.qps|round) | \(.p99|round) |"' <<<"$r")
			if [ -n "$fq" ]; then
				line+=$(jq -r --argjson fq "$fq" '" \(.qps / $fq * 100 | round / 100)x |"' <<<"$r")
			else
				line+=" |"
			fi
		else
			line+=" none reaches it | | | |"
		fi
	done
	echo "$line"
done
