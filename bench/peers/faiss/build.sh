#!/usr/bin/env bash
# Builds FAISS from a snapshot of its source and the project's FAISS harness,
# faiss_peer.cpp, against it: the peer that every ANN ratio in BENCHMARKS.md
# is measured beside, in the same run.
#
#   bench/peers/faiss/build.sh FAISS_GIT_DIR WORK_DIR
#
# FAISS_GIT_DIR is a git directory of facebookresearch/faiss (a bare clone
# will do); its HEAD is built. WORK_DIR lies outside the repository and
# receives src/, build/, the logs and the binary faiss_peer. FAISS is built
# as the AVX-512 variant (FAISS_OPT_LEVEL=avx512), static, CPU only, against
# Debian's OpenBLAS, with -march=native: about 6 minutes on 2 cores.
set -euo pipefail
if [ $# -ne 2 ]; then
	echo "usage: $0 FAISS_GIT_DIR WORK_DIR" >&2
	exit 2
fi
git_dir=$(cd "$1" && pwd)
work=$2
here=$(cd "$(dirname "$0")" && pwd)

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
[ -e /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] || [ -e /usr/include/openblas/cblas.h ] || need+=(libopenblas-dev)
[ -e /usr/lib/llvm-14/lib/libomp.so ] || dpkg -s libgomp1 >/dev/null 2>&1 || need+=(libgomp1)
if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$work"
work=$(cd "$work" && pwd)
commit=$(git --git-dir="$git_dir" rev-parse HEAD)
if [ ! -f "$work/src/.commit" ] || [ "$(cat "$work/src/.commit")" != "$commit" ]; then
	rm -rf "$work/src" "$work/build"
	mkdir -p "$work/src"
	git --git-dir="$git_dir" archive HEAD | tar -x -C "$work/src"
	echo "$commit" >"$work/src/.commit"
fi
version=$(sed -n 's/^ *VERSION \([0-9.]*\)$/\1/p' "$work/src/CMakeLists.txt" | head -1)
echo "FAISS $version at $commit"

if [ ! -f "$work/build/faiss/libfaiss_avx512.a" ]; then
	cmake -S "$work/src" -B "$work/build" \
		-DCMAKE_BUILD_TYPE=Release \
		-DFAISS_OPT_LEVEL=avx512 \
		-DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF -DFAISS_ENABLE_C_API=OFF \
		-DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=OFF \
		-DBLA_VENDOR=OpenBLAS \
		-DCMAKE_CXX_FLAGS=-march=native >"$work/cmake.log" 2>&1 ||
		{ tail -30 "$work/cmake.log" >&2; exit 1; }
	cmake --build "$work/build" --target faiss_avx512 -j"$(nproc)" >"$work/build.log" 2>&1 ||
		{ tail -30 "$work/build.log" >&2; exit 1; }
fi
lib=$(find "$work/build" -name libfaiss_avx512.a | head -1)
g++ -std=c++20 -O3 -march=native -fopenmp -DFINTEGER=int \
	-DFAISS_VERSION_STRING="\"$version\"" -DFAISS_COMMIT="\"$commit\"" \
	-I"$work/src" "$here/faiss_peer.cpp" "$lib" -lopenblas -o "$work/faiss_peer"
echo "built $work/faiss_peer"
