#!/usr/bin/env bash
# check_no_gloo_code.sh BINARY: BINARY defines and calls no function of gloo itself. bireco
# compiles c10d's ProcessGroupGloo.hpp against Debian's gloo headers, which are older than the
# gloo inside the wheel's libtorch_cpu (cmake/torch_backends.cmake); that is only safe while no
# gloo code from those headers is compiled in and every gloo call goes through LibTorch.
set -euo pipefail
symbols=$(nm -C "$1" | grep -E '^[0-9a-f ]+ [A-Za-z] gloo::' || true)
if [ -n "$symbols" ]; then
  echo "FAIL: $1 holds gloo code compiled from the Debian headers:" >&2
  echo "$symbols" | head -n 20 >&2
  exit 1
fi
echo "no gloo:: symbols in $1 ($(nm -C "$1" | grep -c 'gloo' || true) symbols merely mention gloo types)"
