#!/usr/bin/env bash
# check_needed.sh BINARY: the dynamic libraries BINARY loads first-hand (its NEEDED entries)
# hold no libcuda.so (the one CUDA-enabled binary must start where no GPU driver exists, as on
# CI's machines) and begin with libstdc++.so.6, so that std:: symbols bind to the system
# libstdc++ rather than to the copies LibTorch exports (cmake/torch_backends.cmake).
set -euo pipefail
needed=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
echo "NEEDED of $1:" $needed
if echo "$needed" | grep -q '^libcuda\.so'; then
  echo "FAIL: $1 needs the CUDA driver library" >&2; exit 1
fi
first=$(echo "$needed" | head -n 1)
[ "$first" = libstdc++.so.6 ] || { echo "FAIL: first NEEDED is $first, not libstdc++.so.6" >&2; exit 1; }
