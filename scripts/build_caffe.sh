#!/usr/bin/env bash
# Build BVLC Caffe (CPU only, with pycaffe) into a cache outside the repository.
#
#   scripts/build_caffe.sh PYTHON      build if needed, then print the cache folder
#   scripts/build_caffe.sh --key PYTHON   print the cache folder without building
#
# PYTHON is the interpreter pycaffe is built for (the project's .venv/bin/python; it must
# have numpy). The cache folder is $CAFFE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/fer-caffe)
# plus a key made of the source version, the patch files, the CMake options and the Python
# version, so a change to any of them builds anew. A folder becomes usable only when its
# `.complete` file is written, which is the last step: an interrupted build is wiped and
# redone by the next run. The full build output goes to <folder>.log.
set -euo pipefail

CAFFE_VERSION=1.0.0+git20180821.99bd997-8   # Debian bullseye's caffe: BVLC master 2018-08-21 + Debian patches
APT_PACKAGES="dpkg-dev cmake libboost-system-dev libboost-thread-dev libboost-filesystem-dev
  libboost-python-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev libhdf5-dev
  liblmdb-dev libleveldb-dev libsnappy-dev libopenblas-dev libopenblas-openmp-dev libopencv-dev libdnnl-dev"
TARGETS="caffe caffe.bin pycaffe compute_image_mean"
PATCH_DIR="$(cd "$(dirname "$0")" && pwd)/caffe-patches"

say() { printf '[caffe] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

key_only=0
if [ "${1:-}" = "--key" ]; then key_only=1; shift; fi
[ $# -eq 1 ] || die "usage: $0 [--key] PYTHON"
PYTHON=$1
[ -x "$PYTHON" ] || die "no Python interpreter at $PYTHON (run 'make install')"

py_info=$("$PYTHON" -c 'import sys, sysconfig
v = sysconfig.get_config_var
print("%d.%d" % sys.version_info[:2])
print(sysconfig.get_paths()["include"])
print(v("LIBDIR") + "/" + v("LDLIBRARY"))
print(sys._base_executable)')
{ read -r py_version; read -r py_include; read -r py_library; read -r py_base; } <<<"$py_info"

# OpenMP runs the images of a batch in parallel (patch 0002); OpenBLAS's OpenMP build shares
# that thread pool (its pthread build would fight it for the two cores), and so does oneDNN
# (Debian's libdnnl uses OpenMP). The oneDNN engine (patch 0003) is the CPU default;
# FER_CAFFE_ENGINE=caffe builds without it (a build of its own: the options are in the key).
# Either way a net can pick a layer's engine (engine: CAFFE / DNNL), and CAFFE_ENGINE=CAFFE
# in the environment makes CAFFE the default at run time.
USE_DNNL=ON
[ "${FER_CAFFE_ENGINE:-dnnl}" = caffe ] && USE_DNNL=OFF
OPENBLAS_OPENMP=/usr/lib/x86_64-linux-gnu/openblas-openmp
CMAKE_OPTIONS="-DCPU_ONLY=ON -DUSE_CUDNN=OFF -DBLAS=Open -DBUILD_python=ON -DBUILD_python_layer=ON
  -Dpython_version=3 -DBUILD_docs=OFF -DBUILD_matlab=OFF -DUSE_OPENCV=ON -DUSE_LMDB=ON
  -DUSE_LEVELDB=ON -DCMAKE_BUILD_TYPE=Release -DUSE_OPENMP=ON
  -DOpenBLAS_INCLUDE_DIR=/usr/include/x86_64-linux-gnu/openblas-openmp -DOpenBLAS_LIB=$OPENBLAS_OPENMP/libopenblas.so
  -DUSE_DNNL=$USE_DNNL"

key=$( { echo "$CAFFE_VERSION"; echo "$CMAKE_OPTIONS"; echo "$TARGETS"; echo "python $py_version";
         cat "$PATCH_DIR"/*.patch; } | sha256sum | cut -c1-12)
cache_root=${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fer-caffe}
prefix="$cache_root/caffe-${CAFFE_VERSION%%+*}-$key"
log="$prefix.log"

if [ $key_only = 1 ] || [ -f "$prefix/.complete" ]; then
  echo "$prefix"
  exit 0
fi

step="start"
trap 'say "FAILED at step: $step. Full log: $log"' ERR
mkdir -p "$cache_root"
rm -rf "$prefix"
mkdir -p "$prefix"
: >"$log"
say "building Caffe $CAFFE_VERSION (CPU only, pycaffe for Python $py_version) in $prefix"
say "full build log: $log"

step="install Debian packages"
# shellcheck disable=SC2086
missing=$(for p in $APT_PACKAGES; do
            dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
          done | xargs)
if [ -n "$missing" ]; then
  say "$step: $missing"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update >>"$log" 2>&1
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends $missing >>"$log" 2>&1
fi

step="download the Debian source package caffe=$CAFFE_VERSION"
say "$step"
apt_dir="$prefix/apt"
mkdir -p "$apt_dir/lists/partial"
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
         | awk '/^(URIs:|deb) +https?:\/\// && !/security/ {print $2; exit}' || true)
[ -n "$mirror" ] || die "could not find the Debian mirror in /etc/apt/sources*"
echo "deb-src $mirror bullseye main" >"$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$apt_dir/lists")
apt-get "${apt_opts[@]}" update >>"$log" 2>&1
(cd "$prefix" && apt-get "${apt_opts[@]}" source --download-only "caffe=$CAFFE_VERSION" >>"$log" 2>&1 \
   && dpkg-source -x caffe_*.dsc src >>"$log" 2>&1)

step="apply the patches in $PATCH_DIR"
for p in "$PATCH_DIR"/*.patch; do
  say "patch $(basename "$p")"
  patch -d "$prefix/src" -p1 --forward <"$p" >>"$log" 2>&1
done

step="configure with CMake"
say "$step"
# shellcheck disable=SC2086
cmake -S "$prefix/src" -B "$prefix/build" $CMAKE_OPTIONS \
  -DPYTHON_EXECUTABLE="$PYTHON" -DPYTHON_INCLUDE_DIR="$py_include" -DPYTHON_LIBRARY="$py_library" \
  >>"$log" 2>&1

step="compile ($TARGETS)"
say "$step: a few minutes on 2 cores"
start=$(date +%s)
# shellcheck disable=SC2086
make -C "$prefix/build" -j"$(nproc)" $TARGETS >>"$log" 2>&1
say "compiled in $(( $(date +%s) - start )) s"

step="check pycaffe and its BLAS"
PYTHONPATH="$prefix/src/python" "$PYTHON" -c 'import caffe; caffe.set_mode_cpu()' >>"$log" 2>&1
[[ "$(ldd "$prefix/build/lib/libcaffe.so")" == *"$OPENBLAS_OPENMP/libopenblas.so.0"* ]]
rm -rf "$prefix/apt" "$prefix"/caffe_*
echo "$CAFFE_VERSION $key built $(date -u +%FT%TZ) for $py_base" >"$prefix/.complete"
say "done"
echo "$prefix"
